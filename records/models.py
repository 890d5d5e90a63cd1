"""Models of the records app; filled in by the issues that need them."""
