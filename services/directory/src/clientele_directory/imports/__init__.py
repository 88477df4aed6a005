"""Imports: organizations from .xlsx or CSV files (dry run, all-or-nothing, valid rows)."""
