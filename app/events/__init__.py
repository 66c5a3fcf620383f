"""The event log and, later, its live fan-out."""
