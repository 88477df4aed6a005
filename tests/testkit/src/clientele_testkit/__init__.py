"""Test support: find or start real Kafka, PostgreSQL and Redis for integration tests."""
