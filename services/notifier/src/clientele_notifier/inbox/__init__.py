"""Each employee's in-app inbox and its live stream."""
