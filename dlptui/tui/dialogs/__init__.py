"""Every modal of the console, on one dialog base."""
