"""Search over organizations and persons: text, filters, sorting, keyset pages."""
