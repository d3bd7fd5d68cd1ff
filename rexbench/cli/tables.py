"""Tables that never cut a number, a name or a unit.

A Rich table squeezed into a narrow page cuts its cells ("4,796," for 4,796,186) or ends them with
an ellipsis. `fit` renders a table at the page width first and keeps it only if every word of every
header and cell comes out whole; otherwise it shows the same cells as a narrower layout, one block
per row: the row's first cell as its heading, then its other cells as `header: value` pairs packed
into lines, never split inside a pair.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text


def as_text(cell: Any) -> Text:
    """A cell or header as Rich Text (markup strings parsed, styles kept)."""
    from rich.text import Text

    if isinstance(cell, Text):
        return cell
    return Text.from_markup(cell) if isinstance(cell, str) else Text(str(cell))


def words(table: Table) -> list[str]:
    """Every whitespace-separated word of the table's headers and cells."""
    out: list[str] = []
    for column in table.columns:
        out += as_text(column.header).plain.split()
        for cell in column.cells:
            out += as_text(cell).plain.split()
    return out


def render_plain(renderable: RenderableType, width: int) -> str:
    """What `renderable` looks like printed on a page `width` columns wide, as plain text."""
    from rich.console import Console

    page = Console(
        file=io.StringIO(), width=width, color_system=None, force_terminal=False, soft_wrap=False
    )
    page.print(renderable)
    return page.file.getvalue()  # type: ignore[attr-defined]


def fits(table: Table, width: int) -> bool:
    """Whether the table, printed `width` columns wide, shows every header and cell word whole."""
    from collections import Counter

    text = render_plain(table, width)
    if max((len(line.rstrip()) for line in text.splitlines()), default=0) > width:
        return False
    return all(text.count(word) >= n for word, n in Counter(words(table)).items())


def stacked(table: Table, width: int) -> RenderableType:
    """The table's rows as blocks for a page `width` columns wide: the row's first cell as a
    heading, then its other cells as `header: value` pairs packed into indented lines; a pair is
    never split across lines (one wider than a line wraps at its spaces)."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    parts: list[Any] = []
    if table.title:
        parts.append(as_text(table.title).copy())
        parts[-1].stylize("bold")
    headers = [_one_line(as_text(c.header).plain) for c in table.columns]
    cells = [list(c.cells) for c in table.columns]
    for row in range(table.row_count):
        values = [as_text(column[row]) if row < len(column) else Text() for column in cells]
        heading = values[0].copy()
        heading.stylize("bold")
        if heading.plain.strip():  # an empty first cell continues the block above
            parts.append(heading)
        items: list[tuple[str, Text]] = []
        for header, value in zip(headers[1:], values[1:], strict=True):
            if value.plain.strip():
                items += _pair(header, value)
        parts += [Padding(line, (0, 0, 0, 2), expand=False) for line in _pack(items, width - 2)]
    if table.caption:
        caption = as_text(table.caption).copy()
        caption.stylize("dim")
        parts.append(caption)
    return Group(*parts)


def _pair(header: str, value: Text) -> list[tuple[str, Text]]:
    """`header: value` as (separator, piece) items: one per line of a multi-line value, joined by
    "; " (so "aten.add x11" stays on one line), and two spaces before the header."""
    from rich.text import Text

    lines = [line for line in value.split("\n") if line.plain.strip()]
    items = []
    for i, line in enumerate(lines):
        piece = (Text(f"{header}: ", style="dim") + line) if i == 0 else line.copy()
        if i < len(lines) - 1:
            piece.append(";")
        items.append(("  " if i == 0 else " ", piece))
    return items


def _pack(items: list[tuple[str, Text]], room: int) -> list[Text]:
    """The pieces into lines of at most `room` columns, greedily, in order; a piece is never split
    (one wider than a line wraps at its spaces when printed)."""
    lines: list[Text] = []
    for separator, piece in items:
        if lines and lines[-1].cell_len + len(separator) + piece.cell_len <= room:
            lines[-1].append(separator)
            lines[-1].append_text(piece)
        else:
            lines.append(piece.copy())
    return lines


def _one_line(header: str) -> str:
    """A header's lines joined ("median\\nms" -> "median ms", "IQR/\\nmed" -> "IQR/med")."""
    lines = header.split()
    out = lines[0] if lines else ""
    for line in lines[1:]:
        out += line if out.endswith("/") else f" {line}"
    return out


def fit(table: Table, width: int) -> RenderableType:
    """The table itself when it fits `width` whole, else its stacked layout."""
    return table if fits(table, width) else stacked(table, width)


def page_width(out: Console, max_width: int | None = None) -> int:
    """The width a table may use on `out` (a pipe or file: the console's width, 80 unless the
    COLUMNS variable says otherwise), at most `max_width`."""
    return out.width if max_width is None else min(out.width, max_width)
