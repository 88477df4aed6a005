"""Imports of persons (contacts) from amoCRM, Bitrix24 and Excel files (ADR 63)."""
