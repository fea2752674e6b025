"""Data of the health management service: the record catalogue (別添2) and the routine schedule."""
