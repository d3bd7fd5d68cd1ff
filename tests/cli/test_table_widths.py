"""Every table the CLI prints, on pages 60, 80 and 120 columns wide (a terminal, and a pipe): no
number, model name or unit is cut or ends in an ellipsis, and no line is wider than the page.

The tables are built by the commands' own table functions from synthetic data; they are printed
through `rexbench.cli.common.print_tables`, as the commands print them."""

from __future__ import annotations

import io
import re

import _synthetic as syn
import pytest
from rich.console import Console

from rexbench.cli.common import print_tables
from rexbench.cli.tables import as_text, fits, stacked

WIDTHS = (60, 80, 120)


def show(*renderables, width: int, terminal: bool = True) -> str:
    buffer = io.StringIO()
    out = Console(file=buffer, width=width, force_terminal=terminal, color_system=None)
    print_tables(*renderables, out=out)
    return buffer.getvalue()


def check_whole(text: str, expected: list[str], width: int) -> None:
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    for word in expected:
        assert word in text, (word, width)


def every_word(*tables) -> list[str]:
    """Every word of every header and cell, but the first column's header (the stacked layout
    shows that column's cells as the headings of the blocks)."""
    out = []
    for t in tables:
        for i, column in enumerate(t.columns):
            cells = [as_text(c).plain for c in column.cells]
            if i and any(c.strip() for c in cells):  # stacked: an empty column shows nowhere
                out += as_text(column.header).plain.split()
            out += [w for c in cells for w in c.split()]
    return out


# ------------------------------------------------------------------------------------- count


def _counts():
    from rexbench.measure.counting.counts import Counts

    def one(model: str, params: int, macs: int) -> Counts:
        return Counts(
            input_shape=(1, 3, 224, 224),
            params_total=params,
            params_trainable=params,
            macs_conv=macs,
            macs_fvcore=macs + 16_188_536,
            macs_thop=macs + 31_000_123,
            flops_torch=2 * macs,
            conv_linear_macs=dict.fromkeys(("conv", "fvcore", "thop", "torch"), macs),
            skipped={
                "conv": {},
                "fvcore": {"aten::hardtanh": 16, "aten::silu_": 17},
                "thop": {"SiLU": 17},
                "torch": {"aten._native_batch_norm_legit_no_training": 62},
            },
            model=model,
        )

    return [
        one("rexnet_x1.0", 4_796_873, 398_370_392),
        one("efficientnet_b0", 5_288_548, 385_814_752),
    ]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("terminal", [True, False])
def test_count_tables(width: int, terminal: bool) -> None:
    from rexbench.cli import count as cmd
    from rexbench.measure.counting.counts import ModuleRow

    counts = _counts()
    tables = [cmd._counts_table(counts), cmd._agreement_table(counts), cmd._skipped_table(counts)]
    rows = [
        ModuleRow("", "ReXNetV1", 0, 4_796_873, 398_370_392, (1, 1000)),
        ModuleRow("features.0", "ConvBNAct", 1, 928, 10_838_016, (1, 32, 112, 112)),
        ModuleRow(
            "features.10.block.conv_dw", "Conv2d", 2, 1_512_000, 123_456_789, ((1, 3), (1, 2, 3))
        ),
    ]
    tables.append(cmd._module_table("rexnet_x1.0", (1, 3, 224, 224), rows))
    text = show(*tables, width=width, terminal=terminal)
    check_whole(text, every_word(*tables), width)
    for number in ("4,796,873", "398,370,392", "414,558,928", "796,740,784", "123,456,789"):
        assert number in text
    assert "aten._native_batch_norm_legit_no_training x62" in " ".join(text.split())


# ------------------------------------------------------------------------------------ models


@pytest.mark.parametrize("width", WIDTHS)
def test_models_table(width: int) -> None:
    from rexbench.cli import models as cmd

    rows = [cmd.model_row(e) for e in cmd.select(None)]
    table = cmd.models_table(rows)
    text = show(table, width=width)
    check_whole(text, every_word(table), width)
    assert "4,796,873" in text and "efficientnet_lite3" in text and "mobilenetv3_large_100" in text


# ----------------------------------------------------------------------------- profile, sweep


def _profile_records():
    from rexbench.measure.checks.derived import derived

    records = [syn.make("rexnet_x1.0", 12.3456, preset=p) for p in ("eager", "compile_cl", "max")]
    records.append(syn.make("efficientnet_b3", 128.75, preset="eager"))
    for r in records:
        r.summary, r.warnings = derived(r)
    return records


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("terminal", [True, False])
def test_profile_table(width: int, terminal: bool) -> None:
    from rexbench.cli import profile as cmd

    data = cmd.table_data(_profile_records(), [])
    table = cmd.render(data)
    text = show(table, width=width, terminal=terminal)
    check_whole(text, every_word(table), width)
    row = data["rows"][0]
    for value in (f"{row['median_ms']:.3f}", f"{row['ci_low_ms']:.3f}", f"{row['ci_high_ms']:.3f}"):
        assert value in text
    if width >= 120:
        assert re.search(r"median .* p90 .* 95% CI", text), "a 120-column page shows a table"


@pytest.mark.parametrize("width", WIDTHS)
def test_sweep_table(width: int) -> None:
    from rexbench.cli import sweep as cmd

    def row(model: str, ms: float | None) -> dict:
        return {
            "model": model,
            "config": "compile_cl",
            "config_id": "84fad6bd21af",
            "median_ms": ms,
            "record": None,
            "valid": True,
        }

    data = {
        "measured": [row("rexnet_x1.0", 17.6543), row("timm:resnet50?drop_rate=0.1", 103.25)],
        "kept": [row("rexnet_x1.0", 16.329)],
        "skipped": [row("efficientnet_b3", 81.5)],
        "failed": [{"model": "rexnet_x2.0", "error": "x"}],
    }
    table = cmd.sweep_table(data)
    text = show(table, width=width)
    check_whole(text, every_word(table), width)
    assert "measured again" in text and "16.329" not in text  # the kept record: a line below


# ------------------------------------------------------------------------------------ report


def _report_docs():
    from rexbench.report import paper

    one = [
        syn.make(m, ms)
        for m, ms in (
            ("rexnet_x1.0", 17.654),
            ("efficientnet_b0", 18.9),
            ("rexnet_x1.3", 24.5),
            ("efficientnet_b1", 31.25),
        )
    ]
    other = [
        syn.make(
            r.model.spec,
            3 * r.latency.median_ms,
            machine="amd-epyc-2c-16e4d4e5",
            brand="AMD EPYC Test",
        )
        for r in one
    ]
    return [paper.build(one, sources=["results/example"]), paper.build(one + other)]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("terminal", [True, False])
def test_report_tables(width: int, terminal: bool) -> None:
    from rich.table import Table

    from rexbench.report.render import to_rich

    for doc in _report_docs():
        renderables = to_rich(doc)
        text = show(*renderables, width=width, terminal=terminal)
        check_whole(text, every_word(*[r for r in renderables if isinstance(r, Table)]), width)
        assert "4,796,873" in text and "17.65 [" in text


# -------------------------------------------------------------------------------------- gate


def _gate_report():
    from rexbench.gate.checks import Verdict
    from rexbench.gate.report import GateReport

    return GateReport([
        Verdict("rexnet_x1.0", "counts", "params:=", "pass", "equal", 4_796_873, 4_796_873, 1.0, 1.0),
        Verdict("rexnet_x1.0", "compile_cl", "latency.p10:+10%", "regression",
                "ratio 1.234 > limit 1.100 and significant (p = 0.0001, CI low 1.198 > 1)",
                17_654_321, 21_785_432, 1.234, 1.1, 0.0001, (1.198, 1.27), "anchor"),
        Verdict("timm:resnet50?drop_rate=0.1", "eager", "throughput:-10%", "inconclusive",
                "not significant", 56.25, 52.5, 0.933, 0.9, 0.2, (0.85, 1.02), None),
    ])  # fmt: skip


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("terminal", [True, False])
def test_gate_table(width: int, terminal: bool) -> None:
    from rexbench.cli import gate as cmd

    table = cmd.gate_table(_gate_report())
    text = show(table, width=width, terminal=terminal)
    check_whole(text, every_word(table), width)
    for value in (
        "4,796,873",
        "17.654 ms",
        "21.785 ms",
        "56.2 img/s",
        "timm:resnet50?drop_rate=0.1",
    ):
        assert value in text


@pytest.mark.parametrize("width", WIDTHS)
def test_baseline_counts_table(width: int) -> None:
    from rexbench.cli import baseline as cmd

    entries = {
        "rexnet_x1.0": {
            "params_total": 4_796_873,
            "params_trainable": 4_796_873,
            "macs_conv": 398_370_392,
            "macs_conv@224": 398_370_392,
            "resolution": 224,
        },
        "efficientnet_b3": {
            "params_total": 12_233_232,
            "params_trainable": 12_233_232,
            "macs_conv": 1_827_630_040,
            "macs_conv@224": 1_000_000_000,
            "resolution": 300,
        },
    }
    table = cmd.counts_table(entries)
    text = show(table, width=width)
    check_whole(text, every_word(table), width)
    assert "1,827,630,040" in text


# ------------------------------------------------------------------------------ the helper


def test_a_table_that_fits_stays_a_table_and_one_that_does_not_is_stacked() -> None:
    from rich.table import Table

    table = Table(title="t")
    for name in ("model", "value"):
        table.add_column(name, no_wrap=True)
    table.add_row("rexnet_x1.0", "1,234,567,890")
    assert fits(table, 60)
    assert not fits(table, 20)
    narrow = show(table, width=24)
    assert "1,234,567,890" in narrow and "rexnet_x1.0" in narrow and "┃" not in narrow
    assert "value: 1,234,567,890" in show(stacked(table, 40), width=40)
