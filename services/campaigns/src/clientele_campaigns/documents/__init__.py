"""Documents of a marketing event."""
