"""Directory domain rules (no I/O): validation, normalization, diffs and access rules.

One module per aggregate; what they share (value types, diffs, entity tags) is in ``common``.
"""
