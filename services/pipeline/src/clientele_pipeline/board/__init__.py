"""The kanban board: a pipeline's deals by stage with counts, sums and filters."""
