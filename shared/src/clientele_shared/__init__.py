"""Clientele common library: the event backbone, auth and HTTP conventions every service shares."""
