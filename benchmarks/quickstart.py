"""How long the README's two quick-start commands take on a fresh clone, as a new user runs them.

The commands are read from README.md itself (the lines after `# 1.` and `# 2.` in the quick start),
so what is timed is what the README says. Each runs in a fresh `git clone` of this repository, with
pip's cache and torch.compile's cache in new empty folders (as on a fresh machine): command 1 cold,
then `rexbench profile rexnet_x1.0` again in the same clone (warm: the venv and the compile cache
are there), then command 2 in a second clone. pytest is asked for its 25 slowest tests through
PYTEST_ADDOPTS (the command itself is unchanged).

    python benchmarks/quickstart.py --out results/quickstart [--commands 1|2|both]

writes OUT/times.json (the machine, the load before and after, each command's wall time), the
three logs and the records the profiles wrote (OUT/records/; git ignores runs/), and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WARM = ". .venv/bin/activate && rexbench profile rexnet_x1.0"


def readme_commands(readme: Path) -> tuple[str, str]:
    """The quick start's command 1 and command 2: the line after `# 1.` and after `# 2.`."""
    lines = readme.read_text().splitlines()
    found = {}
    for i, line in enumerate(lines):
        for number in ("1", "2"):
            if line.startswith(f"# {number}.") and number not in found:
                found[number] = lines[i + 1].strip()
    return found["1"], found["2"]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor()


def timed(command: str, cwd: Path, log: Path, env: dict[str, str]) -> dict:
    """Run `command` with bash in `cwd`; its output into `log`; wall time, exit code, load."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=out, stderr=out)
    seconds = time.perf_counter() - start
    return {
        "command": command,
        "seconds": round(seconds, 1),
        "exit_code": done.returncode,
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def fresh_env(caches: Path) -> dict[str, str]:
    """This environment without a venv, with empty pip and torch.compile caches."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    path = [p for p in env["PATH"].split(":") if not p.endswith(("/venv/bin", "/.venv/bin"))]
    env["PATH"] = ":".join(path)
    env["PIP_CACHE_DIR"] = str(caches / "pip")
    env["TORCHINDUCTOR_CACHE_DIR"] = str(caches / "inductor")
    env["PYTEST_ADDOPTS"] = "--durations=25"
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--commands", choices=["1", "2", "both"], default="both", help="which command(s) to time"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    first, second = readme_commands(REPO / "README.md")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    report: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="rexbench-quickstart-") as tmp:
        work = Path(tmp)
        env = fresh_env(work / "caches")
        if args.commands != "2":
            clone = work / "one"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            report["command_1_cold"] = timed(first, clone, args.out / "command1-cold.log", env)
            report["command_1_warm"] = timed(WARM, clone, args.out / "command1-warm.log", env)
            shutil.copytree(clone / "runs", args.out / "records", dirs_exist_ok=True)
        if args.commands != "1":
            clone = work / "two"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            report["command_2"] = timed(second, clone, args.out / "command2.log", env)
    for key in ("command_1_cold", "command_1_warm", "command_2"):
        if key in report:
            report[key].update(commit=commit, date=report["date"])
    path = args.out / "times.json"
    earlier = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**earlier, **report}, indent=2) + "\n")  # one command at a time
    for key in ("command_1_cold", "command_1_warm", "command_2"):
        if key in report:
            r = report[key]
            print(
                f"{key}: {r['seconds']:.1f} s, exit {r['exit_code']}, load {r['load_before']:.2f}"
            )


if __name__ == "__main__":
    main()
