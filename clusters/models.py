"""Models of the clusters app; filled in by the issues that need them."""
