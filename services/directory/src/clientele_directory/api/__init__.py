"""The directory's feature not yet moved to a feature folder (ADR 1): lists."""
