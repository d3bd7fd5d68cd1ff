"""Figure 3 and the report after a day of use: several records of one model in other configurations,
thread counts, allocators and at other times. One point and one row per model, configuration,
threads and allocator, from the newest record, the older ones named; threads (and allocators) in
every legend entry and row where they differ; point labels that do not overlap; a hardware
comparison of two folders of one machine id."""

from __future__ import annotations

import json

import pytest
from _synthetic import env, make
from matplotlib.text import Text

from rexbench.cli import run
from rexbench.records.store import write_record
from rexbench.report import paper as report
from rexbench.report.claims import claim_rows
from rexbench.report.figure3 import figure3, summary
from rexbench.report.latest import allocator, latest, older_note, threads

A = "xeon-8c-aaaa0001"
DEFAULT_MALLOC = {**env(A), "allocator": {"policy": "default", "reason": "not glibc"}}


def at(hour: int) -> str:
    return f"2026-03-02T{hour:02d}:00:00+00:00"


def day() -> list:
    """x1.0 and B0 profiled through a day: eager at 2 threads (x1.0 twice, the 9 o'clock record
    replaced at 12), eager at 1 thread, max at 2 threads, and x1.0 eager once more under glibc's
    default allocator."""
    return [
        make("rexnet_x1.0", 40.0, threads=2, created=at(9)),
        make("efficientnet_b0", 42.0, threads=2, created=at(9)),
        make("rexnet_x1.0", 60.0, threads=1, created=at(10)),
        make("efficientnet_b0", 63.0, threads=1, created=at(10)),
        make("rexnet_x1.0", 30.0, preset="max", threads=2, created=at(11)),
        make("efficientnet_b0", 31.0, preset="max", threads=2, created=at(11)),
        make("rexnet_x1.0", 38.0, threads=2, created=at(12)),
        make("rexnet_x1.0", 45.0, threads=2, created=at(13), environment=DEFAULT_MALLOC),
    ]


OLDER = (
    "1 older record(s) not shown, each replaced by a newer one of the same model, configuration, "
    "threads and allocator: rexnet_x1.0 eager, 2 threads of 2026-03-02 09:00 UTC."
)


def test_one_record_per_model_configuration_threads_and_allocator() -> None:
    kept, older = latest(day())
    seen = [
        (r.model.spec, r.run.label, threads(r), allocator(r), r.latency.median_ms) for r in kept
    ]
    assert seen == [
        ("rexnet_x1.0", "eager", 2, "steady", 38.0),
        ("efficientnet_b0", "eager", 2, "steady", 42.0),
        ("rexnet_x1.0", "eager", 1, "steady", 60.0),
        ("efficientnet_b0", "eager", 1, "steady", 63.0),
        ("rexnet_x1.0", "max", 2, "steady", 30.0),
        ("efficientnet_b0", "max", 2, "steady", 31.0),
        ("rexnet_x1.0", "eager", 2, "default", 45.0),
    ]
    assert [r.created for r in older] == [at(9)] and older_note(older) == OLDER
    # torch's default of 8 threads and --threads 8 measure the same: the newer one stays
    default, asked = make("rexnet_x1.0", 50.0, created=at(8)), make("rexnet_x1.0", 49.0, threads=8)
    assert (default.run.config_id != asked.run.config_id) and latest([default, asked]) == (
        [default],
        [asked],
    )
    # the threads the model ran with win over the ones asked for; no allocator stored: steady
    default.timing.backend = {"threads": 3}
    assert threads(default) == 3 and allocator(default) == "steady"


def test_figure_draws_each_point_once_and_names_threads_and_allocator() -> None:
    fig = figure3(day())
    lines = summary(fig)["panels"][1]["lines"]
    assert lines == [
        "ReXNet - eager, 1 thread, steady allocator",
        "ReXNet - eager, 2 threads, default allocator",
        "ReXNet - eager, 2 threads, steady allocator",
        "ReXNet - max, 2 threads, steady allocator",
        "EfficientNet - eager, 1 thread, steady allocator",
        "EfficientNet - eager, 2 threads, steady allocator",
        "EfficientNet - max, 2 threads, steady allocator",
    ]
    xs = {c.get_label(): list(c[0].get_xdata()) for c in fig.axes[1].containers}
    assert xs["ReXNet - eager, 2 threads, steady allocator"] == [38.0]  # not the older 40.0
    drawn = sorted(x for values in xs.values() for x in values)
    assert drawn == [30.0, 31.0, 38.0, 42.0, 45.0, 60.0, 63.0]
    labels = [t.get_text() for t in fig.axes[1].texts if hasattr(t, "xy")]
    assert sorted(labels) == ["B0", "x1.0"]  # each model once, at its fastest point
    assert OLDER in " ".join(fig._supxlabel.get_text().split())


def crowded() -> list:
    """14 ReXNet and EfficientNet models, each in 3 configurations at 1 and 2 threads on CPU and
    GPU, all within 16-26 ms: 12 lines and 14 labels in each latency panel."""
    specs = [
        "rexnet_x0.9",
        "rexnet_x1.0",
        "rexnet_x1.1",
        "rexnet_x1.2",
        "rexnet_x1.3",
        "rexnet_x1.4",
        "rexnet_x1.5",
        "rexnet_x2.0",
        "rexnet_x2.2",
        "rexnet_x3.0",
        "efficientnet_b0",
        "efficientnet_b1",
        "efficientnet_b2",
        "efficientnet_b3",
    ]
    out = []
    for i, spec in enumerate(specs):
        for j, preset in enumerate(("eager", "max", "ort")):
            for k in (1, 2):
                ms = 16.0 + (i * 7 % 10) * 0.4 + j * 1.5 + (2 - k) * 2.0
                out.append(make(spec, ms, preset=preset, threads=k))
                out.append(make(spec, ms, preset=preset, threads=k, device="cuda"))
    return out


def test_point_labels_do_not_overlap_and_stay_in_their_panel(tmp_path) -> None:
    records = crowded()
    fig = figure3(records, tmp_path / "f.png", paper=True)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.texts if hasattr(t, "xy")]
        # every model drawn is labelled, once
        drawn = {r.model.short_label for r in records}
        assert sorted(t.get_text() for t in labels) == sorted(drawn)
        boxes = [Text.get_window_extent(t, renderer) for t in labels]  # the text, not its leader
        frame = ax.get_window_extent(renderer)
        for i, box in enumerate(boxes):
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1, labels[i].get_text()
            assert frame.y0 <= box.y0 and box.y1 <= frame.y1, labels[i].get_text()
            for j in range(i + 1, len(boxes)):
                assert not box.overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width


def test_a_long_legend_fits_the_width_and_leaves_the_panels_their_height() -> None:
    """Two machines x 3 configurations x 2 thread counts: 26 legend entries, some 50 characters."""
    two = [r for r in crowded() if r.device == "cpu" and r.model.spec.endswith(("x1.0", "b0"))]
    records = [
        make(
            r.model.spec,
            ms * r.latency.median_ms,
            machine=machine,
            preset=r.run.label,
            threads=threads(r),
        )
        for r in two
        for machine, ms in ((A, 1.0), ("epyc-2c-bbbb0002", 1.4))
    ]
    fig = figure3(records)
    renderer = fig.canvas.get_renderer()
    assert len(summary(fig)["panels"][1]["lines"]) == 24
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width  # four columns would not fit
    # the figure grows by what the legend takes beyond four rows: the panels keep 3 inches
    assert fig.get_figheight() > 5.6 and fig.axes[1].get_window_extent(renderer).height > 300


def rows(section) -> list[dict]:
    return [dict(zip(section.columns, cells, strict=True)) for cells in section.rows]


def test_report_rows_name_threads_and_allocator_where_they_differ() -> None:
    doc = report.build(day())
    assert doc.intro[0] == OLDER
    speedups = "speed-up over eager [95% CI], fastest first"
    runtimes = [(r["model"], r["device"], r[speedups]) for r in rows(doc.section("runtimes"))]
    assert [(m, d) for m, d, _ in runtimes] == [
        ("efficientnet_b0", "cpu fp32, batch 1, 1 thread, steady allocator"),
        ("efficientnet_b0", "cpu fp32, batch 1, 2 threads, steady allocator"),
        ("rexnet_x1.0", "cpu fp32, batch 1, 1 thread, steady allocator"),
        ("rexnet_x1.0", "cpu fp32, batch 1, 2 threads, default allocator"),
        ("rexnet_x1.0", "cpu fp32, batch 1, 2 threads, steady allocator"),
    ]
    cell = runtimes[4][2]  # max against the eager record of its own threads and allocator
    assert cell.startswith("max 1.27x [") and cell.endswith("; eager 38.00 ms")
    assert all(c.count("eager") == 1 for _, _, c in runtimes)
    latency = sorted((r["model"], r["config"]) for r in rows(doc.section("latency")))
    assert latency[-4:] == [
        ("rexnet_x1.0", "eager fp32, 1 thread, steady allocator"),
        ("rexnet_x1.0", "eager fp32, 2 threads, default allocator"),
        ("rexnet_x1.0", "eager fp32, 2 threads, steady allocator"),
        ("rexnet_x1.0", "max fp32, 2 threads, steady allocator"),
    ]
    # a claim compares its two models at the same threads and allocator only
    pair = [c for c in claim_rows(latest(day())[0]) if c["id"] == "rexnet_x1.0_vs_b0_cpu"]
    claims = [(c["config"], c["threads"], c["allocator"], c["measured"]) for c in pair]
    assert claims == [
        ("eager", 1, "steady", pytest.approx(63 / 60)),
        ("eager", 2, "steady", pytest.approx(42 / 38)),
        ("max", 2, "steady", pytest.approx(31 / 30)),
    ]
    cells = rows(doc.section("claims"))
    assert [c["config"] for c in cells if "EfficientNet-B0" in c["claim"]] == [
        "eager fp32 on cpu, batch 1, 1 thread",
        "eager fp32 on cpu, batch 1, 2 threads",
        "max fp32 on cpu, batch 1, 2 threads",
    ]


def test_two_folders_of_one_machine_are_compared_folder_by_folder(tmp_path, capsys) -> None:
    example, runs = tmp_path / "example", tmp_path / "runs"
    for spec, ms in (("rexnet_x1.0", 40.0), ("efficientnet_b0", 42.0)):
        write_record(make(spec, ms, created=at(9)), example)
    for spec, ms in (("rexnet_x1.0", 38.0), ("efficientnet_b0", 44.0)):
        write_record(make(spec, ms, created=at(12)), runs)
    argv = ["report", str(runs), str(example), "--reference", str(example), "--json"]
    assert run(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["machines"] == [str(runs), str(example)] and data["reference"] == str(example)
    assert data["intro"][1] == (
        f"`{runs}` and `{example}` hold records of one machine id, `{A}`: compared folder by "
        f"folder, reference `{example}`."
    )
    (section,) = [s for s in data["sections"] if s["id"] == "hardware"]
    hardware = {r["model"]: r["machines"] for r in section["rows"]}
    assert hardware["rexnet_x1.0"][str(runs)]["speed_vs_reference"] == pytest.approx(40 / 38)
    assert hardware["efficientnet_b0"][str(runs)]["rank"] == 2
    # the reference folder need not be among the folders given
    assert run(["report", str(runs), "--reference", str(example), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["machines"] == [str(runs), str(example)]
    # without a reference folder the two are one machine: the newest record of each model
    assert run(["report", str(runs), str(example), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["machines"] == [A] and data["intro"][1].startswith("2 older record(s) not shown")
