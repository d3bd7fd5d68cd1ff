"""Do configurations measured together in one `rexbench profile` run read what each reads alone, and
what a plain loop reads? And what do the worker processes cost in wall time?

Per model (default rexnet_x1.0 and efficientnet_b0), configurations (default eager, max, ort, openvino)
at --threads (2), each pair (--pairs, at least 5 for the figures) runs three arms, in alternating
order (a b c, then c b a, ...):

  a. together: `rexbench profile MODEL --config eager,max,ort,openvino` (one run, each configuration
     in its worker process, the drift anchor in the parent);
  b. alone: `rexbench profile MODEL --config C`, once per configuration;
  c. plain loop: benchmarks/runtime_loop.py, a fresh Python process per configuration that builds the
     model with rexbench.create_model, prepares it through the runtime's own API (rexbench's prepare
     for the PyTorch configurations) and times --runs calls with perf_counter_ns, started under the
     same allocator policy (--allocator: the environment a worker gets, without its thread variables).

Per configuration it reports the median over pairs of: together / alone; the speed-up over the first
configuration in the together run / the ratio of the alone medians; alone / plain loop. Each passes
within 3% of 1 (docs/workers.md quotes them).

Wall time (unless --no-wall): the together profile of the first model, and `rexbench sweep table5
--runs --sweep-runs` (--sweep-models in place of table5), each with worker processes and with
--in-process, alternated --wall-pairs times; the ratio workers / in-process (the aim: at most 1.10).

Writes OUT/worker_isolation.json (every median, ratio, wall time, command and load average) and
OUT/summary.md, after every pair (a run stopped early keeps what it finished). --quick: a tiny run to try the script (runs 6, warm-up 2, one pair).

Usage (on a quiet machine):
    python benchmarks/worker_isolation.py --pairs 5 --runs 200 --out results/worker-isolation
    python benchmarks/worker_isolation.py --quick --models py:nets.py:Net --configs eager,channels_last \
        --sweep-models py:nets.py:Net --out /tmp/wi
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rexbench.measure.machine.allocators import worker_environment
from rexbench.measure.machine.env import machine_id

HERE = Path(__file__).resolve().parent
TOLERANCE = 0.03
WALL_LIMIT = 1.10


def run_json(command: list[str], env: dict[str, str] | None = None) -> tuple[Any, float]:
    """Run a command whose stdout ends with JSON (`--json`, or runtime_loop.py's last line, after
    whatever a runtime printed): (the JSON, its wall time in seconds)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    text = done.stdout if "--json" in command else done.stdout.strip().splitlines()[-1]
    return json.loads(text), wall


def rexbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "rexbench", *args]


def common(opts: argparse.Namespace) -> list[str]:
    """The options every arm shares."""
    out = ["--threads", str(opts.threads), "--runs", str(opts.runs), "--warmup", str(opts.warmup)]
    return out + (["--resolution", str(opts.resolution)] if opts.resolution else [])


def profile(model: str, configs: list[str], opts: argparse.Namespace) -> dict[str, Any]:
    """One `rexbench profile` of `configs`: each configuration's median (ms), the wall time."""
    with tempfile.TemporaryDirectory() as out:
        args = [
            "profile",
            model,
            "--config",
            ",".join(configs),
            *common(opts),
            "--allocator",
            opts.allocator,
            "--out",
            out,
            "--json",
        ]
        data, wall = run_json(rexbench(*args))
    medians = {row["config"]: row["median_ms"] for row in data["rows"]}
    return {"median_ms": medians, "wall_s": wall, "load": os.getloadavg()[0]}


def plain(model: str, config: str, opts: argparse.Namespace) -> dict[str, Any]:
    """benchmarks/runtime_loop.py under the allocator policy: its median (ms) and faults per call."""
    env, _ = worker_environment(opts.allocator, None)
    command = [sys.executable, str(HERE / "runtime_loop.py"), model, config, *common(opts)]
    data, wall = run_json(command, env)
    return {
        "median_ms": data["median"] / 1e6,
        "faults_per_call": data["faults_per_call"],
        "wall_s": wall,
        "load": os.getloadavg()[0],
    }


def one_pair(model: str, pair: int, opts: argparse.Namespace) -> dict[str, Any]:
    """The three arms of one pair, in the order of its parity (a b c, or c b a)."""
    configs = opts.configs if pair % 2 == 0 else opts.configs[::-1]
    arms = {
        "together": lambda: profile(model, opts.configs, opts),
        "alone": lambda: {c: profile(model, [c], opts) for c in configs},
        "plain": lambda: {c: plain(model, c, opts) for c in configs},
    }
    order = list(arms) if pair % 2 == 0 else list(arms)[::-1]
    done = {"model": model, "pair": pair, "order": order}
    for arm in order:
        print(f"pair {pair} {model}: {arm}", file=sys.stderr, flush=True)
        done[arm] = arms[arm]()
    return done


def ratios(pairs: list[dict[str, Any]], model: str, configs: list[str]) -> dict[str, Any]:
    """Per configuration, over the pairs of `model`: medians and the three ratios, each with its
    median, range and whether it is within TOLERANCE of 1."""
    mine = [p for p in pairs if p["model"] == model]
    base = configs[0]
    out = {}
    for c in configs:
        together = [p["together"]["median_ms"][c] for p in mine]
        alone = [p["alone"][c]["median_ms"][c] for p in mine]
        loop = [p["plain"][c]["median_ms"] for p in mine]
        speedup = [
            (p["together"]["median_ms"][base] / p["together"]["median_ms"][c])
            / (p["alone"][base]["median_ms"][base] / p["alone"][c]["median_ms"][c])
            for p in mine
        ]
        out[c] = {
            "together_ms": statistics.median(together),
            "alone_ms": statistics.median(alone),
            "plain_ms": statistics.median(loop),
            "together/alone": verdict([t / a for t, a in zip(together, alone, strict=True)]),
            "speedup/alone ratio": verdict(speedup),
            "alone/plain": verdict([a / p for a, p in zip(alone, loop, strict=True)]),
        }
    return out


def verdict(values: list[float]) -> dict[str, Any]:
    middle = statistics.median(values)
    return {
        "median": middle,
        "min": min(values),
        "max": max(values),
        "values": values,
        "pass": abs(middle - 1) <= TOLERANCE,
    }


def wall_times(opts: argparse.Namespace) -> dict[str, Any]:
    """The together profile and the sweep, with workers and --in-process, alternated."""
    model = opts.models[0]
    sweep_names = opts.sweep_models or ["table5"]
    out: dict[str, Any] = {
        "profile": {"workers": [], "in_process": []},
        "sweep": {"workers": [], "in_process": []},
    }
    # repeat -1 warms torch.compile's cache for every model, untimed: otherwise the first mode
    # timed pays the compilations and the second reads them from the cache (a 5x "cost" of the
    # workers in a first run of this script on sweep table5)
    for repeat in range(-1, opts.wall_pairs):
        modes = ["workers", "in_process"] if repeat % 2 == 0 else ["in_process", "workers"]
        for mode in modes[: 1 if repeat < 0 else 2]:
            extra = ["--in-process"] if mode == "in_process" else []
            print(f"wall {repeat}: profile and sweep, {mode}", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                args = [
                    "profile",
                    model,
                    "--config",
                    ",".join(opts.configs),
                    *common(opts),
                    "--out",
                    tmp,
                    "--json",
                    *extra,
                ]
                profile_s = run_json(rexbench(*args))[1]
                args = [
                    "sweep",
                    *sweep_names,
                    "--runs",
                    str(opts.sweep_runs),
                    "--out",
                    tmp,
                    "--json",
                    *extra,
                ]
                sweep_s = run_json(rexbench(*args))[1]
            if repeat >= 0:
                out["profile"][mode].append(profile_s)
                out["sweep"][mode].append(sweep_s)
    for what in ("profile", "sweep"):
        w, p = (statistics.median(out[what][m]) for m in ("workers", "in_process"))
        out[what]["ratio"] = w / p
        out[what]["pass"] = w / p <= WALL_LIMIT
    out["sweep_command"] = f"rexbench sweep {' '.join(sweep_names)} --runs {opts.sweep_runs}"
    return out


def summary(data: dict[str, Any]) -> str:
    """OUT/summary.md: one table per model, then the wall times."""
    s = data["settings"]
    lines = [
        f"# Worker isolation ({data['when']}, {data['machine']})",
        "",
        f"{', '.join(s['configs'])} at {s['threads']} thread(s), {s['runs']} runs, warm-up "
        f"{s['warmup']}, allocator {s['allocator']}, {s['pairs_done']} of {s['pairs']} alternated "
        "pair(s) done; medians "
        "over pairs, ratios: median over pairs [min-max], pass within 3%.",
        "",
    ]
    for model, table in data["ratios"].items():
        lines += [
            f"## {model}",
            "",
            "| config | plain loop ms | alone ms | together ms | "
            "together / alone | speed-up / alone ratio | alone / plain loop |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for config, row in table.items():
            cells = [f"{row[k]:.3f}" for k in ("plain_ms", "alone_ms", "together_ms")]
            cells += [
                cell(row[k]) for k in ("together/alone", "speedup/alone ratio", "alone/plain")
            ]
            lines.append(f"| {config} | " + " | ".join(cells) + " |")
        lines.append("")
    wall = data.get("wall")
    if wall:
        lines += [
            "## Wall time: worker processes / --in-process",
            "",
            "| command | workers s | in-process s | ratio |",
            "| --- | --- | --- | --- |",
        ]
        for what, name in (
            ("profile", "four-configuration profile"),
            ("sweep", wall["sweep_command"]),
        ):
            w, p = wall[what]["workers"], wall[what]["in_process"]
            mark = "" if wall[what]["pass"] else " (over 10%)"
            lines.append(
                f"| {name} | {statistics.median(w):.1f} | {statistics.median(p):.1f} | "
                f"{wall[what]['ratio']:.3f}{mark} |"
            )
    return "\n".join(lines) + "\n"


def cell(v: dict[str, Any]) -> str:
    return f"{v['median']:.3f} [{v['min']:.3f}-{v['max']:.3f}]" + ("" if v["pass"] else " FAIL")


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["rexnet_x1.0", "efficientnet_b0"])
    parser.add_argument("--configs", default="eager,max,ort,openvino")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--allocator", default="steady")
    parser.add_argument("--no-wall", action="store_true", help="skip the wall-time comparison")
    parser.add_argument("--wall-pairs", type=int, default=2)
    parser.add_argument("--sweep-runs", type=int, default=100)
    parser.add_argument("--sweep-models", nargs="+", default=None)
    parser.add_argument("--quick", action="store_true", help="runs 6, warm-up 2, one pair")
    parser.add_argument("--out", type=Path, default=Path("results/worker-isolation"))
    opts = parser.parse_args()
    opts.configs = opts.configs.split(",")
    if opts.quick:
        opts.runs, opts.warmup, opts.pairs, opts.wall_pairs, opts.sweep_runs = 6, 2, 1, 1, 6
        opts.sweep_models = opts.sweep_models or opts.models
    return opts


def save(data: dict[str, Any], out: Path) -> None:
    """OUT/worker_isolation.json and OUT/summary.md, rewritten after every pair, so that a run
    stopped early keeps the pairs it finished (the summary says how many)."""
    done = data["pairs"]
    models = [m for m in data["settings"]["models"] if any(p["model"] == m for p in done)]
    data["ratios"] = {m: ratios(done, m, data["settings"]["configs"]) for m in models}
    data["settings"]["pairs_done"] = len({p["pair"] for p in done})
    (out / "worker_isolation.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "summary.md").write_text(summary(data))


def main() -> None:
    opts = options()
    opts.out.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": machine_id(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        "pairs": [],
    }
    for k in range(opts.pairs):
        for model in opts.models:
            data["pairs"].append(one_pair(model, k, opts))
            save(data, opts.out)
    if not opts.no_wall:
        data["wall"] = wall_times(opts)
        save(data, opts.out)
    print(summary(data))


if __name__ == "__main__":
    main()
