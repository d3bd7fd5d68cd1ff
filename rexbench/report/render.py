"""A report as data (titled tables with notes) and its three renderings: Rich, Markdown, one HTML file.

Each `Section` keeps the formatted cells shown to people and, row for row, the same data as plain
JSON values (`--json`). HTML is rendered from the Markdown with markdown-it-py (a dependency of
Rich) with raw HTML disabled, and the figure is embedded as a base64 PNG data URI or an inline SVG,
so the file needs nothing else: no links, stylesheets, scripts or images outside it.
"""

from __future__ import annotations

import base64
import html
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.88rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; vertical-align: top; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f3f3f3; padding: 0 0.2rem; }
figure { margin: 1rem 0; } figure img, figure svg { max-width: 100%; height: auto; }
"""


@dataclass
class Section:
    """One titled table. `rows` are display strings; `data` the same rows as JSON values."""

    id: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    intro: str = ""
    right: set[int] = field(default_factory=set)  # indices of right-aligned (numeric) columns

    def add(self, cells: list[str], data: dict[str, Any]) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.id}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)
        self.data.append(data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "intro": self.intro,
            "rows": self.data,
            "notes": self.notes,
        }


@dataclass
class Document:
    title: str
    intro: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-only data (e.g. machine ids)

    def section(self, section_id: str) -> Section:
        for s in self.sections:
            if s.id == section_id:
                return s
        raise KeyError(section_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "intro": self.intro,
            **self.extra,
            "sections": [s.to_dict() for s in self.sections],
        }


def fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value >= 100 else f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def fmt_latency(lat: Any) -> str:
    """ "47.12 [46.90, 47.50]": a `Record.latency` as median ms per batch and its 95% CI."""
    return f"{fmt_ms(lat.median_ms)} [{fmt_ms(lat.ci_low_ms)}, {fmt_ms(lat.ci_high_ms)}]"


def short_table(table_id: str) -> str:
    """ "Table 5" -> "T5", "Table A1" -> "A1"."""
    rest = table_id.removeprefix("Table ")
    return f"T{rest}" if rest[:1].isdigit() else rest


# ------------------------------------------------------------------------------------------ Rich


def to_rich(doc: Document) -> list[Any]:
    """The document as Rich renderables to print in order: markup lines, a table per section, dim
    notes (text is escaped: model names may contain brackets). Numeric cells never wrap; the caller
    decides the page width (the CLI widens it to each table where the output is not a terminal)."""
    from rich import box
    from rich.markup import escape
    from rich.styled import Styled
    from rich.table import Table

    out: list[Any] = [f"[bold]{escape(doc.title)}[/bold]"]
    out += [escape(_plain(line)) for line in doc.intro]
    for s in doc.sections:
        out.append("")
        out.append(f"[bold]{escape(s.title)}[/bold]" + ("" if s.rows else ": nothing to show"))
        if s.intro:
            out.append(escape(_plain(s.intro)))
        if s.rows:
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
            for i, col in enumerate(s.columns):
                numeric = i in s.right
                table.add_column(
                    escape(col),
                    justify="right" if numeric else "left",
                    no_wrap=numeric or i == 0,
                    overflow="fold",
                )
            for row in s.rows:
                table.add_row(*(escape(_plain(c)) for c in row))
            out.append(table)
        out += [Styled(escape(_plain(note)), "dim") for note in s.notes]
    return out


def _plain(text: str) -> str:
    """Markdown inline code `x` shown without backticks in the terminal."""
    return re.sub(r"`([^`]*)`", r"\1", text)


# -------------------------------------------------------------------------------------- Markdown


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", "; ")


def to_markdown(doc: Document, figure: str | None = None) -> str:
    """GitHub-flavoured Markdown; `figure` is the image reference placed after the introduction."""
    out = [f"# {doc.title}", ""]
    out += [f"{line}  " for line in doc.intro] + [""]
    if figure:
        out += [figure, ""]
    for s in doc.sections:
        out += [f"## {s.title}", ""]
        if s.intro:
            out += [s.intro, ""]
        if s.rows:
            out.append("| " + " | ".join(_cell(c) for c in s.columns) + " |")
            out.append(
                "|"
                + "|".join(" ---: " if i in s.right else " --- " for i in range(len(s.columns)))
                + "|"
            )
            out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in s.rows]
        else:
            out.append("Nothing to show.")
        out.append("")
        out += [f"- {n}" for n in s.notes]
        if s.notes:
            out.append("")
    return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------------------------------ HTML


def figure_html(data: bytes, fmt: str, alt: str = "Figure 3") -> str:
    """A <figure> holding the image itself: base64 PNG data URI, or the SVG inline."""
    if fmt == "svg":
        text = data.decode("utf-8")
        start = text.find("<svg")
        return f"<figure>{text[start:] if start >= 0 else text}</figure>"
    encoded = base64.b64encode(data).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}"></figure>'


def to_html(doc: Document, figure: bytes | None = None, fmt: str = "png") -> str:
    """One self-contained HTML file: the Markdown rendered by markdown-it-py (no raw HTML passes
    through) and the figure embedded in place."""
    from markdown_it import MarkdownIt

    token = f"FIGURE{uuid.uuid4().hex}"
    body = MarkdownIt("commonmark", {"html": False}).enable("table")
    rendered = body.render(to_markdown(doc, token if figure else None))
    if figure:
        rendered = rendered.replace(f"<p>{token}</p>", figure_html(figure, fmt))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(doc.title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{rendered}</body>\n</html>\n"
    )
