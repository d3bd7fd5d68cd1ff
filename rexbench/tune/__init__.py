"""`rexbench tune MODEL`: the fastest way to run a model on this machine, and what it costs in
fidelity. The search space from the backend registry (space), successive halving (halving) within a
time budget (budget) through profile's worker processes (search), fidelity on real photographs
(fidelity), the Pareto front (pareto), the recommendation (recommend), the figure (figure), and the
deploy snippet (deploy) checked in a fresh process (verify). docs/tune.md says how it works.
"""
