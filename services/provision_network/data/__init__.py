"""The hub's data files (the permitted-query list)."""
