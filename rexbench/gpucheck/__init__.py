"""The GPU check (benchmarks/gpu_check.py): every GPU configuration measured and checked end to end."""
