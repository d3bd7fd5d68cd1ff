"""Point labels on a crowded panel: inside it, never over one another, the rest left out."""

from __future__ import annotations

from rexbench.figures import new_figure
from rexbench.report.point_labels import Label, place_labels, text_box


def test_a_crowded_panel_keeps_only_labels_that_fit_apart():
    fig = new_figure(2.2, 1.6)
    ax = fig.subplots()
    points = [(i % 4, i // 4) for i in range(16)]
    ax.plot([x for x, _ in points], [y for _, y in points], "o")
    fig.draw_without_rendering()
    labels = [Label(x, y, f"ReXNet-{i}.0") for i, (x, y) in enumerate(points)]
    placed = place_labels(ax, labels, fontsize=9)
    assert 0 < len(placed) < len(labels)  # too crowded for all: some are left out
    assert list(ax.texts) == placed  # the left-out ones are removed, not drawn
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    boxes = [text_box(text, renderer) for text in placed]
    for i, box in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, placed[i].get_text()
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1, placed[i].get_text()
        assert not any(box.overlaps(other) for other in boxes[i + 1 :]), placed[i].get_text()
