"""Analytics of the contact log, always within the caller's directions."""
