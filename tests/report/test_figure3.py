"""Figure 3 from synthetic records: files, image size, panels, points, error bars, empty panels, CLI."""

from __future__ import annotations

import json
import struct

import pytest
from _synthetic import make

from rexbench.cli import run
from rexbench.errors import RexbenchError
from rexbench.records.store import write_record
from rexbench.report.figure3 import NothingToPlot, figure3, panel_texts, parse_axes, summary
from rexbench.stats import median_ci

TABLE5_CPU = [
    ("rexnet_x1.0", 40.0),
    ("rexnet_x1.5", 50.0),
    ("rexnet_x2.0", 60.0),
    ("efficientnet_b0", 42.0),
    ("efficientnet_b3", 90.0),
    ("mobilenet_v2", 20.0),
]


def cpu_records():
    return [make(spec, ms) for spec, ms in TABLE5_CPU]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def line(ax, label):
    for candidate in ax.get_lines():
        if candidate.get_label() == label:
            return candidate
    raise AssertionError(f"no line {label!r} in {[x.get_label() for x in ax.get_lines()]}")


def errorbar(ax, label):
    for container in ax.containers:
        if container.get_label() == label:
            return container
    raise AssertionError(f"no error bars {label!r}")


def test_png_written_with_three_panels_and_size(tmp_path) -> None:
    out = tmp_path / "fig" / "figure3.png"
    fig = figure3(cpu_records(), out)
    assert png_size(out) == (1250, 560)  # 12.5 x 5.6 inches at 100 dpi
    titles = [p["title"] for p in summary(fig)["panels"]]
    assert titles == ["Top-1 vs FLOPs", "Top-1 vs CPU latency", "Top-1 vs GPU latency"]
    assert "batch 1" in fig.axes[1].get_xlabel() and "ms" in fig.axes[1].get_xlabel()
    assert "macs_conv" in fig.axes[0].get_xlabel()
    assert fig.axes[0].get_ylabel() == "ImageNet top-1 (%, published)"


def test_empty_gpu_panel_says_so_inside(tmp_path) -> None:
    fig = figure3(cpu_records())
    texts = panel_texts(fig)
    assert texts[0] == [] and texts[1] == []
    assert texts[2] == ["no CUDA records -\nrun `rexbench sweep table5 --device cuda`"]
    # without any record to draw there is no figure, and no file
    with pytest.raises(NothingToPlot, match="^nothing to plot: no records$"):
        figure3([], tmp_path / "empty.png")
    with pytest.raises(NothingToPlot, match="1 of other families than ReXNet.*--all-families"):
        figure3([make("mobilenet_v2")], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_points_top1_flops_and_labels() -> None:
    fig = figure3(cpu_records())
    rex = line(fig.axes[0], "ReXNet")
    # x: exact macs_conv in B (reference counts), y: the paper's top-1 (Table 5)
    assert list(rex.get_xdata()) == pytest.approx([0.398370392, 0.875828154, 1.528850782])
    assert list(rex.get_ydata()) == [77.9, 80.3, 81.6]
    eff = line(fig.axes[0], "EfficientNet")
    assert list(eff.get_ydata()) == [77.3, 81.7]
    labels = {a.get_text() for a in fig.axes[1].texts if hasattr(a, "xy")}
    assert {"x1.0", "x1.5", "x2.0", "B0", "B3"} <= labels
    assert "V2" not in labels  # MobileNet is not drawn by default


def test_latency_error_bars_are_the_median_ci() -> None:
    records = cpu_records()
    fig = figure3(records)
    bars = errorbar(fig.axes[1], "ReXNet")
    data_line, _, (barcol,) = bars
    assert list(data_line.get_xdata()) == pytest.approx([40.0, 50.0, 60.0])
    low, high, _ = median_ci(records[0].timing.samples_ns)
    (x0, y0), (x1, y1) = barcol.get_segments()[0]
    assert (x0, x1) == pytest.approx((low / 1e6, high / 1e6)) and y0 == y1 == 77.9


def test_families_and_caption() -> None:
    fig = figure3(cpu_records(), families=None)
    legend = summary(fig)["panels"][1]["lines"]
    assert "MobileNetV2" in legend and legend[0] == "ReXNet"  # the paper's families first
    cap = figure3(cpu_records())._supxlabel.get_text()
    assert "Intel Xeon Test 1234 (8 cores)" in cap and "torch 2.13.0" in cap
    assert "eager fp32 on cpu" in cap and "xeon-8c-aaaa0001" in cap
    assert "published ImageNet accuracy" in cap and "not measured" in cap
    assert "1 record(s) of other families not shown" in cap


def test_other_axes_params_and_throughput() -> None:
    assert parse_axes(["params,throughput"]) == ("params", "throughput")
    assert parse_axes(None) == ("flops", "latency")
    with pytest.raises(RexbenchError, match="--x 'speed': choose from flops, params"):
        parse_axes("speed")
    fig = figure3(cpu_records(), x="params,throughput")
    assert [ax.get_title() for ax in fig.axes] == [
        "Top-1 vs parameters",
        "Top-1 vs CPU throughput",
        "Top-1 vs GPU throughput",
    ]
    assert list(line(fig.axes[0], "ReXNet").get_xdata()) == pytest.approx(
        [4.796873, 9.728593, 16.36662]
    )
    # batch 1: images/s = 1000 / median ms
    thr = errorbar(fig.axes[1], "ReXNet")[0].get_xdata()
    assert list(thr) == pytest.approx([25.0, 20.0, 1000 / 60])


def test_cuda_panel_and_paper_overlay() -> None:
    records = cpu_records() + [
        make("rexnet_x1.0", 20.0, device="cuda", preset="eager"),
        make("efficientnet_b0", 22.0, device="cuda", preset="eager"),
    ]
    fig = figure3(records, paper=True)
    assert panel_texts(fig)[2] == []
    assert "batch 64" in fig.axes[2].get_xlabel()
    gpu = errorbar(fig.axes[2], "ReXNet")[0]
    assert list(gpu.get_xdata()) == [20.0]
    paper_cpu = line(fig.axes[1], "ReXNet (paper)")
    assert list(paper_cpu.get_xdata()) == [47, 59, 69]  # Table 5 CPU ms of x1.0, x1.5, x2.0
    assert paper_cpu.get_markerfacecolor() == "none"
    # the paper points of every model drawn anywhere: B0 and B3 (Table 5 GPU ms)
    assert list(line(fig.axes[2], "EfficientNet (paper)").get_xdata()) == [23, 78]
    assert "Hollow markers" in fig._supxlabel.get_text()


def test_one_legend_above_the_panels_and_no_note_over_the_papers_points() -> None:
    fig = figure3(cpu_records(), paper=True)
    assert all(ax.get_legend() is None for ax in fig.axes)  # nothing drawn over any line
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["ReXNet", "EfficientNet", "ReXNet (paper)", "EfficientNet (paper)"]
    # the GPU panel shows the paper's points: its note is in the title and the caption
    assert panel_texts(fig)[2] == []
    assert fig.axes[2].get_title() == "Top-1 vs GPU latency (no CUDA records)"
    assert "No CUDA records: `rexbench sweep table5 --device cuda`" in fig._supxlabel.get_text()


def test_two_close_models_are_not_drawn_edge_to_edge() -> None:
    fig = figure3([make("rexnet_x0.9", 10.0), make("efficientnet_b0", 10.5)])  # 77.2 and 77.3
    low, high = fig.axes[0].get_ylim()
    assert high - low >= 2.0 and low < 77.2 < 77.3 < high
    left, right = fig.axes[1].get_xlim()
    assert right - left >= 0.3 * 10.5


def test_svg_and_bad_suffix(tmp_path) -> None:
    out = tmp_path / "f.svg"
    figure3(cpu_records(), out)
    assert "<svg" in out.read_text()[:2000]
    with pytest.raises(RexbenchError, match="use a file name ending in .png, .svg, .pdf"):
        figure3(cpu_records(), tmp_path / "f.jpg")


def test_cli_plot(tmp_path, capsys) -> None:
    for r in cpu_records():
        write_record(r, tmp_path / "results")
    out = tmp_path / "fig.png"
    assert run(["plot", str(tmp_path / "results"), "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["records"] == 6 and data["machines"] == ["xeon-8c-aaaa0001"]
    assert [p["lines"] for p in data["panels"]][0] == ["ReXNet", "EfficientNet"]
    assert png_size(out) == (1250, 560)
    argv = [
        "plot",
        str(tmp_path / "results"),
        "-o",
        str(out),
        "--all-families",
        "--paper",
        "--json",
    ]
    assert run(argv) == 0
    flops = json.loads(capsys.readouterr().out)["panels"][0]["lines"]
    assert flops == ["ReXNet", "EfficientNet", "MobileNetV2"] + [
        "ReXNet (paper)",
        "EfficientNet (paper)",
        "MobileNetV2 (paper)",
    ]
    assert run(["plot", str(tmp_path / "results"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: Top-1 vs FLOPs (2 lines)")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--x", "speed"], "--x 'speed': choose from"),
        (["--family", "ResNet"], "--family 'ResNet': unknown"),
        (["--out", "f.jpg"], "use a file name ending in"),
    ],
)
def test_cli_plot_errors(tmp_path, capsys, args, message) -> None:
    write_record(make("rexnet_x1.0", 40.0), tmp_path)
    argv = ["plot", str(tmp_path), "--out", str(tmp_path / "f.png"), *args]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rexbench: error: ") and message in err and err.count("\n") == 1


def test_cli_plot_missing_folder(tmp_path, capsys) -> None:
    assert run(["plot", str(tmp_path / "nope"), "--out", str(tmp_path / "f.png")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_text_stays_readable_where_the_html_report_shows_the_figure() -> None:
    """The HTML report shows the figure at most ~1,170 px wide; at 100 dpi every text of 8 pt or
    more is then at least 10 px high."""
    from matplotlib.text import Text

    fig = figure3(cpu_records(), paper=True)
    width_px = fig.get_figwidth() * 100
    shown = min(1.0, 1170 / width_px)
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()]
    assert min(sizes) * 100 / 72 * shown >= 10.0, min(sizes)
