"""The budget of a marketing event: planned and actual cost lines, totals per currency."""
