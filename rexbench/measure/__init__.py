"""Taking measurements: run configurations, preparation, counting backends, the timing loop, the drift
anchor, the machine fingerprint, and the profile and sweep orchestration that turn them into records.

May import: records, models and everything below them.
"""
