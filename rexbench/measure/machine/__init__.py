"""The machine a run happens on: its fingerprint, memory allocator, contention, vCPU placement, GPUs."""
