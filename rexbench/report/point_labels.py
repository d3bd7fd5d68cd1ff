"""Point labels that never overlap one another.

Each label takes the first free place from a list, nearest first: the eight places around its point,
then places level with the point further left or right (a label at its point's height cannot be
read as another row's), then the rest further out, joined to the point by a thin line. A place is
free where the label's box, as matplotlib's renderer measures it, lies inside the panel and clear of
every label placed before it, and if there is such a place also clear of every marker; a label with
no free place is left out, never drawn over another. One greedy pass, deterministic, no dependency:
adjustText moves labels by repulsion over many iterations, needs SciPy, and does not promise that
no two boxes overlap when it stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox

# (horizontal alignment, vertical alignment, x sign, y sign): above left first, then below right,
# the other corners, level with the point, straight above and below
_SIDES = (
    ("right", "bottom", -1, 1),
    ("left", "top", 1, -1),
    ("left", "bottom", 1, 1),
    ("right", "top", -1, -1),
    ("right", "center", -1, 0),
    ("left", "center", 1, 0),
    ("center", "bottom", 0, 1),
    ("center", "top", 0, -1),
)
_NEAR = 5  # points from the point's centre to the label's nearest corner or edge
_FAR = (12, 19, 27, 35)  # the further rings, in points
_GAP = 1.0  # points kept clear around a label
_LEADER = {"arrowstyle": "-", "color": "0.55", "linewidth": 0.6, "shrinkA": 1, "shrinkB": 3}


class Label(NamedTuple):
    """A label for the point (x, y) in data coordinates; below: try below right first."""

    x: float
    y: float
    text: str
    below: bool = False


@dataclass
class _Room:
    """Where a panel's labels may go, in pixels: inside `frame`, `pad` clear of the labels placed
    so far, and of the markers where a place allows it."""

    frame: Bbox
    markers: list[Bbox]
    pad: float
    placed: list[Bbox] = field(default_factory=list)


def places(below: bool = False) -> list[tuple[str, str, float, float]]:
    """(ha, va, dx, dy in points) to try, in order."""
    sides = (_SIDES[1], _SIDES[0], *_SIDES[2:]) if below else _SIDES
    near = [(ha, va, sx * _NEAR, sy * _NEAR) for ha, va, sx, sy in sides]
    level = [(ha, va, sx * r, 0) for r in _FAR for ha, va, sx, sy in sides if sy == 0]
    rest = [(ha, va, sx * r, sy * r) for r in _FAR for ha, va, sx, sy in sides if sy != 0]
    return near + level + rest


def place_labels(ax: Axes, labels: Sequence[Label], fontsize: float) -> list[Annotation]:
    """Annotate the points with their labels and return those placed. Call it once the figure is
    laid out (`Figure.draw_without_rendering`): the labels stay out of the layout, which therefore
    does not move when the figure is saved."""
    renderer = ax.figure.canvas.get_renderer()
    room = _Room(ax.get_window_extent(renderer), _marker_boxes(ax), _GAP * ax.figure.dpi / 72)
    out = []
    for label in labels:
        text = ax.annotate(
            label.text,
            (label.x, label.y),
            (0, 0),
            textcoords="offset points",
            arrowprops=_LEADER,
        )
        text.set(fontsize=fontsize, in_layout=False)
        box = _settle(text, renderer, places(label.below), room)
        if box is None:
            text.remove()
            continue
        text.arrow_patch.set_visible(max(map(abs, text.xyann)) > _NEAR)
        room.placed.append(box)
        out.append(text)
    return out


def _settle(
    text: Annotation, renderer: RendererBase, where: Sequence[tuple], room: _Room
) -> Bbox | None:
    """Move `text` to its first free place in `room`; its box there, or None where none is free."""
    fallback = None
    for ha, va, dx, dy in where:
        _move(text, ha, va, (dx, dy))
        box = text_box(text, renderer)
        padded = box.padded(room.pad)
        if not _inside(box, room.frame) or any(padded.overlaps(b) for b in room.placed):
            continue
        if not any(padded.overlaps(m) for m in room.markers):
            return box
        fallback = fallback or (ha, va, (dx, dy), box)
    if fallback is None:
        return None
    ha, va, offset, box = fallback
    _move(text, ha, va, offset)
    return box


def text_box(text: Annotation, renderer: RendererBase) -> Bbox:
    """The box of the label's text where it is drawn, in pixels (without its leader line)."""
    from matplotlib.text import Text

    text.update_positions(renderer)
    return Text.get_window_extent(text, renderer)


def _move(text: Annotation, ha: str, va: str, offset: tuple[float, float]) -> None:
    text.set(horizontalalignment=ha, verticalalignment=va)
    text.xyann = offset


def _inside(box: Bbox, frame: Bbox) -> bool:
    return frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1


def _marker_boxes(ax: Axes) -> list[Bbox]:
    """The boxes of every marker drawn in the panel (points, error bar caps), in pixels."""
    from matplotlib.transforms import Bbox

    out = []
    for line in ax.lines:
        if line.get_marker() in (None, "None", "none", "", " "):
            continue
        radius = line.get_markersize() / 2 * ax.figure.dpi / 72
        for px, py in line.get_transform().transform(line.get_xydata()):
            out.append(Bbox.from_extents(px - radius, py - radius, px + radius, py + radius))
    return out
