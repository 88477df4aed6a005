"""Organizations: the directory's counterparties."""
