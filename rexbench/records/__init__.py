"""The versioned record schema (typed) and the store of record files (atomic, one folder per machine).

May import: models, spec, paper, registry, stats, errors.
"""
