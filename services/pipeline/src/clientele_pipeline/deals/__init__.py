"""Deals: their fields, stage moves with the stage history, soft delete."""
