"""Payload schemas of every event, one module per publishing service."""
