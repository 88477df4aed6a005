"""Kinds of marketing events: the catalogue an administrator keeps (seminar, webinar...)."""
