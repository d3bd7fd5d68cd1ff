"""Orchestration: profile and sweep, which build, count, prepare, time and write one record per run."""
