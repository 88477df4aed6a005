"""The event backbone: envelope, topic registry, transactional outbox, idempotent inbox."""
