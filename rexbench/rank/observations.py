"""The paper's three observations on Figure 1 (section 3.2), as checks over mean rank-ratio curves.

Pure functions over `curves[block][activation] -> mean rank ratio per dimension ratio` (what
`StudyResult.curves()` returns), so they can be tested on hand-made numbers. "Lift" is the paper's
measure in (ii): the rank ratio above the input dimension, rank/d_out - d_in/d_out; it is taken over the
ratios below 1 (at 1.0 there is nothing to lift) and over the nonlinear activations ("none" excluded).
With a `reference` curve (the measure of the input X itself, per ratio) the lift is taken above it
instead: for a measure other than the exact rank, a rank-d_in input does not measure d_in.
A check whose blocks or activations were not measured reports `holds=None` for that part; `parts`
keeps each tested part's outcome, so that readings can be ranked by how much of the paper they match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

Curves = Mapping[str, Mapping[str, Sequence[float]]]

LINEAR = "none"
SINGLE = ("conv1x1", "conv3x3")
IB = ("ib_conv3x3", "ib_dw3x3")
SHORT = {"conv1x1": "a", "conv3x3": "b", "ib_conv3x3": "c", "ib_dw3x3": "d"}
# the smallest drop in rank ratio that shows in a plot like Figure 1 (5% of its 0-1 axis)
VISIBLE = 0.05


@dataclass(frozen=True)
class Verdict:
    """One observation: whether it holds on the measured curves, and the numbers behind it."""

    key: str  # "i", "ii", "iii"
    claim: str
    holds: bool | None  # None: nothing measured that could test it
    details: tuple[str, ...]
    parts: tuple[bool, ...] = ()  # the outcome of each part that could be tested

    @property
    def status(self) -> str:
        return {True: "holds", False: "does not hold", None: "not tested"}[self.holds]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "claim": self.claim,
            "holds": self.holds,
            "details": list(self.details),
            "parts": list(self.parts),
        }


def _short(block: str) -> str:
    return SHORT.get(block, block)


def _nonlinear(curves: Curves, block: str) -> list[str]:
    return [a for a in curves[block] if a != LINEAR]


def _combine(parts: list[bool | None]) -> bool | None:
    tested = [p for p in parts if p is not None]
    return all(tested) if tested else None


def _verdict(key: str, claim: str, parts: list[bool | None], details: list[str]) -> Verdict:
    tested = tuple(bool(p) for p in parts if p is not None)
    return Verdict(key, claim, _combine(parts), tuple(details), tested)


def _reference(ratios: Sequence[float], reference: Sequence[float] | None) -> Sequence[float]:
    return ratios if reference is None else reference


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def block_lift(
    ratios: Sequence[float], curve: Sequence[float], reference: Sequence[float] | None = None
) -> float | None:
    """Mean of rank ratio - reference (default: the dimension ratio) over the ratios below 1; None if
    there are none."""
    base = _reference(ratios, reference)
    lifts = [r - b for x, r, b in zip(ratios, curve, base, strict=True) if x < 1.0]
    return fmean(lifts) if lifts else None


def check_expansion(ratios: Sequence[float], curves: Curves) -> Verdict:
    """(i) A smaller dimension ratio lowers the rank ratio, more so for IBs and for depthwise convs.

    drop = rank ratio at the largest dimension ratio - at the smallest, averaged over the nonlinear
    activations (all activations if only "none" was measured). Holds if every block drops by at
    least `VISIBLE` (a curve flat at full rank down to the smallest ratio but for a sliver does not
    show that expansion harms the rank), every IB drops more than every single conv, and the
    depthwise IB (d) more than the 3x3-conv IB (c).
    """
    claim = "a smaller dimension ratio lowers the rank ratio, more so for IBs and depthwise convs"
    if len(ratios) < 2 or not curves:
        return Verdict("i", claim, None, ("needs at least two dimension ratios",))
    lo = min(range(len(ratios)), key=lambda k: ratios[k])
    hi = max(range(len(ratios)), key=lambda k: ratios[k])
    drop: dict[str, float] = {}
    for block in curves:
        acts = _nonlinear(curves, block) or list(curves[block])
        drop[block] = fmean(curves[block][a][hi] - curves[block][a][lo] for a in acts)
    details = [
        f"drop in rank ratio from d_in/d_out={ratios[hi]:g} to {ratios[lo]:g}: "
        + ", ".join(f"{_short(b)} {d:.3f}" for b, d in drop.items())
    ]
    parts: list[bool | None] = [all(d >= VISIBLE for d in drop.values())]
    details.append(f"every block loses rank (drop >= {VISIBLE:g}): {_yes(bool(parts[0]))}")
    singles = [drop[b] for b in SINGLE if b in drop]
    ibs = [drop[b] for b in IB if b in drop]
    if singles and ibs:
        more = min(ibs) > max(singles)
        parts.append(more)
        details.append(
            f"IBs lose more than single convs: {_yes(more)} "
            f"(smallest IB drop {min(ibs):.3f} vs largest single-conv drop {max(singles):.3f})"
        )
    if all(b in drop for b in IB):
        more = drop["ib_dw3x3"] > drop["ib_conv3x3"]
        parts.append(more)
        details.append(
            f"depthwise IB loses more than 3x3-conv IB: {_yes(more)} "
            f"({drop['ib_dw3x3']:.3f} vs {drop['ib_conv3x3']:.3f})"
        )
    return _verdict("i", claim, parts, details)


def check_lift(
    ratios: Sequence[float], curves: Curves, reference: Sequence[float] | None = None
) -> Verdict:
    """(ii) Nonlinearities lift the rank above the input dimension, more at smaller dimension ratios;
    SiLU and ELU more than ReLU6.

    Holds if the smallest lift over every block, nonlinear activation and dimension ratio < 1 is
    positive, the mean lift (over blocks and activations) at the smallest ratio exceeds that at the
    largest ratio below 1, and the mean lift (over blocks and ratios) of SiLU and of ELU exceeds
    ReLU6's. The lift is taken above `reference` (default: d_in/d_out).
    """
    claim = "nonlinearities lift the rank above d_in/d_out, more at small ratios, SiLU/ELU more than ReLU6"
    base = _reference(ratios, reference)
    points = [
        (curves[b][a][k] - base[k], b, a, x)
        for b in curves
        for a in _nonlinear(curves, b)
        for k, x in enumerate(ratios)
        if x < 1.0
    ]
    if not points:
        return Verdict("ii", claim, None, ("needs a nonlinearity and a dimension ratio below 1",))
    low = min(points)
    above = low[0] > 0
    parts: list[bool | None] = [above]
    where = "d_in/d_out" if reference is None else "the input's own measure"
    details = [
        f"every nonlinear curve lies above {where}: {_yes(above)} "
        f"(smallest lift {low[0]:.3f}: {_short(low[1])} {low[2]} at {low[3]:g})"
    ]
    acts = {a for b in curves for a in _nonlinear(curves, b)}
    mean_lift = {
        a: fmean(p[0] for p in points if p[2] == a) for a in ("silu", "elu", "relu6") if a in acts
    }
    rivals = [a for a in ("silu", "elu") if a in mean_lift]
    if "relu6" in mean_lift and rivals:
        more = all(mean_lift[a] > mean_lift["relu6"] for a in rivals)
        parts.append(more)
        numbers = ", ".join(f"{a} {mean_lift[a]:.3f}" for a in (*rivals, "relu6"))
        details.append(f"SiLU/ELU lift more than ReLU6: {_yes(more)} (mean lift {numbers})")
    below_one = sorted({p[3] for p in points})
    if len(below_one) >= 2:
        small, large = (
            fmean(p[0] for p in points if p[3] == x) for x in (below_one[0], below_one[-1])
        )
        more = small > large
        parts.append(more)
        details.append(
            f"more lift at smaller ratios: {_yes(more)} (mean lift {small:.3f} at "
            f"{below_one[0]:g} vs {large:.3f} at {below_one[-1]:g})"
        )
    return _verdict("ii", claim, parts, details)


def check_single_vs_ib(
    ratios: Sequence[float], curves: Curves, reference: Sequence[float] | None = None
) -> Verdict:
    """(iii) The lift is larger for single convs (a, b) than for inverted bottlenecks (c, d).

    Compares the mean lift (over nonlinear activations and ratios < 1, above `reference`) per block:
    holds if the smallest single-conv lift exceeds the largest IB lift. When "none" was measured, the
    lift over the linear block (rank ratio with f - without f) is reported too, as context.
    """
    claim = "the lift is larger for single convs than for inverted bottlenecks"
    lift: dict[str, float] = {}
    over_linear: dict[str, float] = {}
    for b in curves:
        per_act = [block_lift(ratios, curves[b][a], reference) for a in _nonlinear(curves, b)]
        per_act_known = [v for v in per_act if v is not None]
        if per_act_known:
            lift[b] = fmean(per_act_known)
        if LINEAR in curves[b] and _nonlinear(curves, b):
            linear = curves[b][LINEAR]
            over_linear[b] = fmean(
                r - r0
                for a in _nonlinear(curves, b)
                for r, r0 in zip(curves[b][a], linear, strict=True)
            )
    singles = {b: lift[b] for b in SINGLE if b in lift}
    ibs = {b: lift[b] for b in IB if b in lift}
    if not singles or not ibs:
        return Verdict(
            "iii", claim, None, ("needs a single conv (a/b) and an IB (c/d) with a nonlinearity",)
        )
    holds = min(singles.values()) > max(ibs.values())
    details = [
        "mean lift above d_in/d_out: " + ", ".join(f"{_short(b)} {v:.3f}" for b, v in lift.items()),
        f"smallest single-conv lift > largest IB lift: {_yes(holds)}",
    ]
    if reference is not None:
        details[0] = details[0].replace("d_in/d_out", "the input's own measure")
    if over_linear:
        details.append(
            "context, mean lift over the linear block: "
            + ", ".join(f"{_short(b)} {v:.3f}" for b, v in over_linear.items())
        )
    return _verdict("iii", claim, [holds], details)


def observations(
    ratios: Sequence[float], curves: Curves, reference: Sequence[float] | None = None
) -> list[Verdict]:
    """All three checks, in the paper's order; `reference`: the input's own measure per ratio."""
    return [
        check_expansion(ratios, curves),
        check_lift(ratios, curves, reference),
        check_single_vs_ib(ratios, curves, reference),
    ]


def score(verdicts: Sequence[Verdict]) -> tuple[int, int, int]:
    """(observations that hold, parts that hold, parts tested): how much of the paper a reading
    reproduces, for ranking readings."""
    held = sum(1 for v in verdicts if v.holds)
    return held, sum(sum(v.parts) for v in verdicts), sum(len(v.parts) for v in verdicts)
