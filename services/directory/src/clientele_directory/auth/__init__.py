"""The built-in token issuer."""
