"""The Pareto front of speed against fidelity: the candidates that no other candidate beats on both
latency (lower is better) and top-1 agreement with eager fp32 (higher is better). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """A measured candidate: its name, latency (any unit, lower is better) and agreement (0-1)."""

    name: str
    latency: float
    agreement: float


def dominates(a: Point, b: Point) -> bool:
    """a is at least as fast and as faithful as b, and strictly better in one of the two."""
    return (
        a.latency <= b.latency
        and a.agreement >= b.agreement
        and (a.latency < b.latency or a.agreement > b.agreement)
    )


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The points no other point dominates, fastest first. Of points equal in both numbers the
    first given stays and the others go (one name per place on the front)."""
    front: list[Point] = []
    for i, p in enumerate(points):
        if any(dominates(q, p) for q in points):
            continue
        if any((q.latency, q.agreement) == (p.latency, p.agreement) for q in points[:i]):
            continue
        front.append(p)
    return sorted(front, key=lambda p: (p.latency, -p.agreement))
