"""The directory's employees as far as delivery needs them (a read model)."""
