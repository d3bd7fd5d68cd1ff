"""Which reading of the paper's section 3.2 reproduces its Figure 1? A systematic search.

Section 3.2 leaves open how "rank" is measured, of which matrix, on which inputs, with how large a
batch N, where the BN sits and in which mode, in which precision and over which d_out; see
`rexbench.rank.readings`. This script runs the study once per reading and judges every rank measure
of that run against the paper's observations (i), (ii) and (iii) with `rexbench.rank.observations`
(the lift is taken above the input's own measure, so that soft measures are judged fairly):

1. one factor at a time from the base reading (the study's pre-search default: exact numerical rank
   of the batch x H x W positions, Gaussian inputs on an 8x8 grid, N = 2 d_out, conv -> BN (batch
   statistics) -> f, fp32, d_out 16..96), every measure of each run;
2. the combinations of the changes that matched more of the paper than the base (see `COMBINATIONS`).

Writes readings.txt (the table), readings.json (verdicts, curves, wall times) and readings.png (a
figure: one row per reading, one column per measure, parts of the paper matched) to --out. Same seed,
same numbers. Run it from the repository root:

    nice -n 10 python benchmarks/rank_readings.py --networks 20 --out results/rank
    python benchmarks/rank_readings.py --from-json results/rank/readings.json --out results/rank
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rexbench.rank.measures import search_measures  # noqa: E402
from rexbench.rank.observations import observations, score  # noqa: E402
from rexbench.rank.readings import DEFAULT_READING, Reading  # noqa: E402
from rexbench.rank.study import StudyConfig, run_measures  # noqa: E402

# the reading `rexbench rank study` used before this search (committed Figure 1, commit 814a8ad)
BASE = Reading(
    measure="rank",
    matrix="positions",
    inputs="gaussian",
    n_ratio=2.0,
    bn="pre",
    bn_mode="train",
    init="he",
    dtype="fp32",
    d_out_range=(16, 96),
    spatial=8,
    centre=False,
)

# one factor at a time; the measure axis is covered inside every run (all measures of one SVD)
FACTORS: dict[str, list[dict]] = {
    "matrix": [{"matrix": "pooled"}, {"matrix": "per-position"}, {"spatial": 1}],
    "inputs": [{"inputs": k} for k in ("uniform", "relu", "smooth", "lowrank")],
    "N / d_out": [{"n_ratio": r} for r in (1.25, 4.0, 8.0)],
    "BN": [{"bn": "post"}, {"bn": "none"}, {"bn_mode": "eval"}],
    "init (no BN)": [{"bn": "none", "init": k} for k in ("torch", "normal")],
    "precision": [{"dtype": "fp64"}],
    "d_out range": [{"d_out_range": (4, 16)}, {"d_out_range": (64, 256)}],
    "centring": [{"centre": True}],
}

# combinations of the changes that, alone, matched more parts of the paper than the base: no BN
# acting (bn none, or BN in eval mode at its initial statistics, as after model.eval()), the
# literal "N is the batch" (1x1 maps), the weight init that then sets the pre-activation scale, and
# the range of d_out; plus checks that a combination's match is not an fp32 artefact (fp64)
COMBINATIONS: list[dict] = [
    {"spatial": 1, "bn": "none"},
    {"spatial": 1, "bn_mode": "eval"},
    {"spatial": 1, "bn_mode": "eval", "init": "torch"},
    {"spatial": 1, "bn_mode": "eval", "init": "normal"},
    {"spatial": 1, "bn_mode": "eval", "init": "torch", "d_out_range": (64, 256)},
    {"spatial": 1, "bn_mode": "eval", "init": "torch", "d_out_range": (64, 256), "dtype": "fp64"},
    {"spatial": 1, "bn_mode": "eval", "init": "normal", "d_out_range": (64, 256)},
    {"spatial": 1, "bn_mode": "eval", "init": "torch", "n_ratio": 1.25},
    {"spatial": 1, "bn_mode": "eval", "init": "torch", "inputs": "relu"},
    {"spatial": 1, "bn_mode": "eval", "init": "torch", "centre": True},
    {"bn_mode": "eval", "init": "torch"},
    {"spatial": 1, "dtype": "fp64"},
    {"matrix": "pooled", "bn": "none"},
    {"bn": "post", "init": "normal"},
]
CONFIRM = 3  # the best readings are rerun with two more seeds

PAPER = {
    "i": "drastic channel expansion harms the rank, more for IBs and most with a depthwise conv",
    "ii": "nonlinearities expand the rank above the input dimension, more at small ratios, "
    "ELU/SiLU most",
    "iii": "nonlinearities expand the rank of single convs more than that of IBs",
}


def readings() -> list[tuple[str, Reading]]:
    """(factor group, reading) for the base, every one-factor change and every combination."""
    out = [("base", BASE)]
    for group, changes in FACTORS.items():
        out += [(group, BASE.with_(**change)) for change in changes]
    out += [("combination", BASE.with_(**change)) for change in COMBINATIONS]
    return out


def judge(result) -> dict:
    """Verdicts, score and the numbers behind them of one measure's result."""
    cfg = result.config
    verdicts = observations(cfg.ratios, result.curves(), result.reference())
    held, parts, tested = score(verdicts)
    return {
        "measure": cfg.reading.measure,
        "holds": {v.key: v.holds for v in verdicts},
        "held": held,
        "parts": parts,
        "tested": tested,
        "details": {v.key: list(v.details) for v in verdicts},
        "reference": [round(v, 4) for v in result.reference() or []],
    }


def run(networks: int, seed: int) -> dict:
    import torch

    rows = []
    total_start = time.perf_counter()
    for group, reading in readings():
        start = time.perf_counter()
        cfg = StudyConfig(networks=networks, seed=seed, reading=reading)
        results = run_measures(cfg, search_measures())
        wall = time.perf_counter() - start
        judged = [judge(r) for r in results.values()]
        rows.append(
            {"group": group, "reading": reading.label(BASE), "wall_s": wall, "measures": judged}
        )
        best = max(judged, key=lambda j: (j["held"], j["parts"]))
        print(
            f"{group:<12} {reading.label(BASE):<58} {wall:6.1f} s  best {best['measure']:<11} "
            f"{best['held']}/3 observations, {best['parts']}/{best['tested']} parts",
            flush=True,
        )
    for row in sorted(rows, key=_best_score, reverse=True)[:CONFIRM]:
        reading = next(r for _, r in readings() if r.label(BASE) == row["reading"])
        row["seeds"] = {m["measure"]: [m["held"]] for m in row["measures"]}
        for other in (seed + 1, seed + 2):
            cfg = StudyConfig(networks=networks, seed=other, reading=reading)
            for m in run_measures(cfg, search_measures()).values():
                row["seeds"][m.config.reading.measure].append(judge(m)["held"])
        print(f"confirmed {row['reading']}: {row['seeds']}", flush=True)
    return {
        "networks": networks,
        "seed": seed,
        "base": BASE.to_dict(),
        "paper": PAPER,
        "readings": rows,
        "wall_s": time.perf_counter() - total_start,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _best_score(row: dict) -> tuple[int, int]:
    return max((m["held"], m["parts"]) for m in row["measures"])


def _mark(holds: bool | None) -> str:
    return {True: "yes", False: "no", None: "-"}[holds]


def table(data: dict) -> str:
    """The text table: one line per (reading, measure), best first within each reading."""
    default = DEFAULT_READING.label(BASE)
    lines = [
        f"# benchmarks/rank_readings.py --networks {data['networks']} (seed {data['seed']}, torch "
        f"{data.get('torch', '?')}): "
        f"{len(data['readings'])} readings x {len(data['readings'][0]['measures'])} measures, "
        f"{data['wall_s']:.0f} s wall",
        "# The paper (section 3.2) says, and Figure 1 shows, all three of:",
        *(f"#   ({k}) {v}" for k, v in data["paper"].items()),
        "# A reading reproduces the paper where all three hold; 'parts': the parts of the three "
        "checks that hold (7 in all);",
        f"# 'seeds': observations that hold with seeds {data['seed']}, {data['seed'] + 1}, "
        f"{data['seed'] + 2} (the {CONFIRM} best readings only).",
        "# base = "
        + Reading(**{**data["base"], "d_out_range": tuple(data["base"]["d_out_range"])}).describe(),
        f"# default of `rexbench rank study`: {default} with rank, the reading closest to the "
        "paper's text (see the end: no reading reproduces all three).",
        "",
        "Best measure per reading:",
        f"{'reading':<58} {'measure':<12} {'(i)':>4} {'(ii)':>4} {'(iii)':>5} {'parts':>5}",
    ]
    for row in data["readings"]:
        m = max(row["measures"], key=lambda j: (j["held"], j["parts"]))
        h = m["holds"]
        lines.append(
            f"{row['reading']:<58} {m['measure']:<12} {_mark(h['i']):>4} {_mark(h['ii']):>4} "
            f"{_mark(h['iii']):>5} {m['parts']:>3}/{m['tested']}"
        )
    lines += [
        "",
        "Every reading and measure:",
        f"{'reading':<58} {'measure':<12} {'(i)':>4} {'(ii)':>4} {'(iii)':>5} {'parts':>5} "
        f"{'seeds':>7}  wall",
    ]
    for row in data["readings"]:
        for k, m in enumerate(sorted(row["measures"], key=lambda j: (-j["held"], -j["parts"]))):
            name = row["reading"] if k == 0 else ""
            mark = "  <- default" if (row["reading"], m["measure"]) == (default, "rank") else ""
            wall = f"{row['wall_s']:.1f} s" if k == 0 else ""
            h = m["holds"]
            seeds = "/".join(str(v) for v in row.get("seeds", {}).get(m["measure"], []))
            lines.append(
                f"{name:<58} {m['measure']:<12} {_mark(h['i']):>4} {_mark(h['ii']):>4} "
                f"{_mark(h['iii']):>5} {m['parts']:>3}/{m['tested']} {seeds:>7}  {wall}{mark}"
            )
    pairs = [(row, m) for row in data["readings"] for m in row["measures"]]
    top = max((m["held"], m["parts"]) for _, m in pairs)
    full = [(row, m) for row, m in pairs if m["held"] == 3]
    lines += [
        "",
        f"{len(full)} of {len(pairs)} (reading, measure) pairs reproduce all three observations.",
        f"Nearest: {top[0]}/3 observations, {top[1]}/7 parts; what fails in each:",
    ]
    for row, m in pairs:
        if (m["held"], m["parts"]) == top:
            fails = [line for lines_ in m["details"].values() for line in lines_ if ": no" in line]
            lines.append(f"  {row['reading']} / {m['measure']}: " + ("; ".join(fails) or "-"))
    return "\n".join(lines) + "\n"


def figure(data: dict, path: Path) -> None:
    """Readings (rows) x measures (columns): parts matched (colour) and which observations hold."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows = data["readings"]
    measures = [m["measure"] for m in rows[0]["measures"]]
    grid = np.array([[m["parts"] / m["tested"] for m in row["measures"]] for row in rows])
    fig = Figure(figsize=(1.0 + 0.62 * len(measures), 0.9 + 0.3 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for r, row in enumerate(rows):
        for c, m in enumerate(row["measures"]):
            held = " ".join(k for k, v in m["holds"].items() if v) or "-"
            ax.text(
                c, r, f"{m['parts']}/{m['tested']}\n{held}", ha="center", va="center", fontsize=5.5
            )
    ax.set_xticks(range(len(measures)), measures, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [row["reading"] for row in rows], fontsize=7)
    fig.colorbar(image, ax=ax, label="parts of observations (i)-(iii) that hold", shrink=0.6)
    default = DEFAULT_READING.label(BASE)
    for r, row in enumerate(rows):
        if row["reading"] == default:
            c = measures.index("rank")
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, linewidth=2))
    ax.set_title(
        f"Readings of section 3.2 vs the paper's observations, {data['networks']} networks per "
        "point\ncell: parts of (i)-(iii) matched, observations that hold; boxed: the default",
        fontsize=8,
    )
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=20, help="random networks per point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="folder for the table and figure")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="redraw the table and figure of a saved run"
    )
    args = parser.parse_args(argv)
    data = (
        json.loads(args.from_json.read_text()) if args.from_json else run(args.networks, args.seed)
    )
    text = table(data)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "readings.txt").write_text(text)
        if args.from_json is None:
            (args.out / "readings.json").write_text(json.dumps(data) + "\n")
        figure(data, args.out / "readings.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
