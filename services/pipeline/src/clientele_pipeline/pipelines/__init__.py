"""Pipelines and their ordered stages (one aggregate, one version)."""
