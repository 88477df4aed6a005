"""Attachments of an interaction: upload, list, download, delete."""
