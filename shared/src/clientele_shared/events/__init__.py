"""The event backbone: envelope, topic and event registry, transactional outbox, idempotent inbox."""
