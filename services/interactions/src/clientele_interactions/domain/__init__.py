"""The contact log's domain: models and rules, pure (no I/O; time is passed in)."""
