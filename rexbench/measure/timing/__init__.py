"""Timing: the per-iteration loop, what it needs from a device, the drift anchor and timer agreement."""
