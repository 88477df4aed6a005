"""Clients as interactions knows them: the card (from the directory's events) and the summary."""
