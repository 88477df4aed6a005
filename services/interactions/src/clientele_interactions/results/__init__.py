"""The configurable results of interactions, per kind (admins manage them)."""
