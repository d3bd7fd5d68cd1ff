"""The CLI's one output helper for tables: a table that does not fit the page whole (a terminal,
or a pipe at its 80 columns) is printed as one block per row instead; nothing is cut; text wraps."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from rexbench.cli.common import print_tables
from rexbench.report.render import Document, Section, to_rich

WIDE = "1234567890" * 6  # 60 characters in one cell


def page(width: int = 80, terminal: bool = False) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=width, force_terminal=terminal, color_system=None), buffer


def wide_table() -> Table:
    table = Table()
    table.add_column("model", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_row("rexnet_x1.0", WIDE)
    return table


def test_a_table_that_does_not_fit_is_stacked_whole_and_the_page_keeps_its_width():
    out, buffer = page()
    print_tables(wide_table(), out=out)
    text = buffer.getvalue()
    assert WIDE in text and "rexnet_x1.0" in text and out.width == 80
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_table_that_fits_is_a_table():
    out, buffer = page(120, terminal=True)
    print_tables(wide_table(), out=out)
    assert "┃ model" in buffer.getvalue()


def test_max_width_caps_the_page():
    out, buffer = page(200)
    print_tables(wide_table(), out=out, max_width=60)
    assert "┃" not in buffer.getvalue() and WIDE in buffer.getvalue()


def test_a_report_prints_through_the_same_helper():
    doc = Document("Title [x]", intro=["intro `code`"])
    section = Section("s", "Section", ["model", "ms"], right={1})
    section.add(["m", WIDE + WIDE], {"model": "m"})
    section.notes.append("a note")
    doc.sections.append(section)
    out, buffer = page()
    print_tables(*to_rich(doc), out=out)
    text = buffer.getvalue()
    assert "Title [x]" in text and "intro code" in text and "a note" in text


def test_version_and_bare_command(capsys):
    import rexbench
    from rexbench.cli import run

    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"rexbench {rexbench.__version__}\n"
    assert run([]) == 0  # no command: the help, on stdout
    out, err = capsys.readouterr()
    assert "profile" in out and err == ""
