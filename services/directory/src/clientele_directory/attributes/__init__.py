"""Custom attributes: their definitions and the values records carry."""
