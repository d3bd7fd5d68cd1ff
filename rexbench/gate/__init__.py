"""CI gates: parsed checks, evaluation of records against baselines, baseline files, the
[tool.rexbench.gate] settings and the gate report.

May import: measure and everything below it; not report or rank.
"""
