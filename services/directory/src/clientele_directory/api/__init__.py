"""The directory's features not yet moved to feature folders (ADR 1): imports and lists."""
