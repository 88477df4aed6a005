"""Each employee's own notification preferences."""
