"""The CLI's one output helper for tables: on a page that is not a terminal, a table is printed at
its natural width (no number cut or wrapped), up to an optional limit; text keeps wrapping."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from rexbench.cli.common import print_wide
from rexbench.report.render import Document, Section, to_rich

WIDE = "1234567890" * 12  # 120 characters in one cell


def page(width: int = 80) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=width, force_terminal=False), buffer


def wide_table() -> Table:
    table = Table()
    table.add_column("value", no_wrap=True)
    table.add_row(WIDE)
    return table


def test_a_table_is_never_cut_when_the_output_is_not_a_terminal():
    out, buffer = page()
    print_wide(wide_table(), out=out)
    assert WIDE in buffer.getvalue() and out.width > 120


def test_max_width_caps_the_page():
    out, buffer = page()
    print_wide(wide_table(), out=out, max_width=100)
    assert out.width == 100 and WIDE not in buffer.getvalue()


def test_a_report_prints_through_the_same_helper():
    doc = Document("Title [x]", intro=["intro `code`"])
    section = Section("s", "Section", ["model", "ms"], right={1})
    section.add(["m", WIDE], {"model": "m"})
    section.notes.append("a note")
    doc.sections.append(section)
    out, buffer = page()
    print_wide(*to_rich(doc), out=out)
    text = buffer.getvalue()
    assert "Title [x]" in text and "intro code" in text and WIDE in text and "a note" in text
