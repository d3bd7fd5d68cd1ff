"""CI gates: parsed checks (`checks`), the judging of records against baselines (`evaluate`), the
gate run that measures or counts now and judges (`run`), baseline save (`save`), the baseline files
(`baseline`), the `[tool.rexbench.gate]` settings (`config`) and the gate report (`report`).

May import: measure and everything below it; not report or rank.
"""
