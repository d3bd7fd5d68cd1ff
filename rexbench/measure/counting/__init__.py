"""Counting: parameters and multiply-adds from a table of counters, and instructions per call."""
