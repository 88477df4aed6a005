"""Stages of a pipeline: add, change, archive, reorder, delete an empty one."""
