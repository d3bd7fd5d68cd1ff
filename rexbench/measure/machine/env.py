"""Machine fingerprint stored in every record: CPU, GPUs, software, threads, git commit, machine id.

What makes two runs comparable (used by the store, the report and the gate):

* **Hardware** - CPU vendor/brand/family/model, the logical cores this process may use, the CPU
  flags that select kernels (avx2, avx512*, amx*, ...), and the GPU names. Only these feed
  `machine_id`, the folder name under runs/ (results/) and baselines/. Two runs with the same machine id
  ran on the same kind of hardware, so their latencies can be compared. The environment variable
  REXBENCH_MACHINE_ID, when set, names the machine instead (identical hardware kept apart, one
  name per cluster node); the record then keeps the hardware id as `hardware_id`.
* **Software** - torch / CUDA / cuDNN versions, torch's CPU capability, thread settings. They are
  recorded but kept out of `machine_id`: upgrading torch must not orphan a machine's baselines;
  a changed torch is exactly what a gate should detect. `differences()` lists them.
* **Volatile state** - temperatures, clocks, throttle reasons, hostname (random in CI containers),
  git commit, time: recorded for diagnosis, never part of any identity. `gpu_snapshot()` and
  `device_snapshot()` read the volatile part again, at the start and end of a run.

NVML (nvidia-ml-py, read in rexbench.measure.machine.nvml) is optional: no library, no driver or any NVML
error gives `"gpus": []` and the reason in `"gpu_error"`. Heavy imports (torch, cpuinfo, pynvml)
happen inside the functions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import re
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rexbench.measure.machine.nvml import query_gpus

#: Environment variables that change how many threads the math libraries use, or where they run.
# fmt: off
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "OMP_DYNAMIC", "MKL_DYNAMIC", "OMP_PROC_BIND",
    "OMP_PLACES", "OMP_WAIT_POLICY", "KMP_AFFINITY", "KMP_BLOCKTIME", "GOMP_CPU_AFFINITY",
    "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY", "CUDA_VISIBLE_DEVICES",
    "CUDA_LAUNCH_BLOCKING", "CUBLAS_WORKSPACE_CONFIG", "PYTORCH_CUDA_ALLOC_CONF",
)
# fmt: on

_KERNEL_FLAGS = {"avx", "avx2", "fma", "neon", "asimd", "sve", "sve2"}
_KERNEL_FLAG_PREFIXES = ("avx512", "amx", "avx_vnni", "avxvnni")


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


# ----------------------------------------------------------------------------------------- CPU


def kernel_flags(flags: list[str] | set[str]) -> list[str]:
    """The CPU flags that decide which kernels oneDNN / ATen / XNNPACK can use, sorted."""
    keep = {
        f.lower()
        for f in flags
        if f.lower() in _KERNEL_FLAGS or f.lower().startswith(_KERNEL_FLAG_PREFIXES)
    }
    return sorted(keep)


def usable_cores() -> int:
    """Logical cores this process may run on: CPU affinity, capped by a cgroup CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(count, math.ceil(quota))) if quota else count


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 cpu.max or v1 cfs quota), or None when unlimited/unknown."""
    try:
        quota, _, period = Path("/sys/fs/cgroup/cpu.max").read_text().partition(" ")
        if quota.strip() != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def _physical_cores() -> int | None:
    """Distinct (package, core) pairs in /proc/cpuinfo; None where that file does not exist."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    pairs = set()
    for block in text.split("\n\n"):
        fields = dict(
            (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in block.splitlines())
        )
        if "core id" in fields:
            pairs.add((fields.get("physical id", "0"), fields["core id"]))
    return len(pairs) or None


@functools.lru_cache(maxsize=1)
def _cpu_static() -> dict[str, Any]:
    """The slow py-cpuinfo call (about a second: it runs a subprocess), done once per process."""
    info: dict[str, Any] = {}
    error = None
    try:
        import cpuinfo

        info = cpuinfo.get_cpu_info()
    except Exception as exc:  # py-cpuinfo missing or failing must not stop a measurement
        error = f"py-cpuinfo failed: {exc}"
    advertised = info.get("hz_advertised")
    return {
        "brand": info.get("brand_raw") or platform.processor() or "unknown",
        "arch": info.get("arch_string_raw") or platform.machine(),
        "vendor": info.get("vendor_id_raw"),
        "family": info.get("family"),
        "model": info.get("model"),
        "hz_advertised": advertised[0] if advertised else None,
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "flags": kernel_flags(info.get("flags", [])),
        "error": error,
    }


def cpu_info() -> dict[str, Any]:
    """CPU description; the py-cpuinfo part is cached per process, the usable cores are re-read."""
    return {**_cpu_static(), "usable_cores": usable_cores()}


# ----------------------------------------------------------------------------------------- GPU


def gpu_info() -> dict[str, Any]:
    """Every GPU: name, driver, memory, current and max clocks, power limit, temperature, reasons."""
    gpus, error = query_gpus(static=True)
    return {"gpus": gpus, "gpu_error": error}


def gpu_snapshot() -> dict[str, Any]:
    """The volatile GPU state (temperature, clocks, power, throttle reasons) at this moment."""
    gpus, error = query_gpus(static=False)
    return {"time": _utc_now(), "gpus": gpus, "gpu_error": error}


def cpu_snapshot() -> dict[str, Any]:
    """The volatile CPU state: load averages (other work on a shared machine) at this moment."""
    try:
        load = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {"time": _utc_now(), "loadavg": load}


def device_snapshot(device: str) -> dict[str, Any]:
    """State to store at the start and end of a run: GPU readings for cuda devices, CPU load else."""
    return gpu_snapshot() if device.startswith("cuda") else cpu_snapshot()


# ------------------------------------------------------------------------------------ software


def software_info() -> dict[str, Any]:
    """Python, torch, CUDA, cuDNN, torch's CPU capability (the SIMD level ATen dispatches to)."""
    from rexbench import __version__

    out: dict[str, Any] = {
        "rexbench": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }
    try:
        import torch

        out.update(
            torch=torch.__version__,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
            mkldnn=torch.backends.mkldnn.is_available(),
        )
    except Exception as exc:
        out["torch_error"] = str(exc)
    return out


def thread_info() -> dict[str, Any]:
    """torch's intra/inter-op thread counts and the thread environment variables that are set."""
    out: dict[str, Any] = {"env": {k: os.environ[k] for k in THREAD_ENV_VARS if k in os.environ}}
    try:
        import torch

        out["torch_num_threads"] = torch.get_num_threads()
        out["torch_interop_threads"] = torch.get_num_interop_threads()
    except Exception:
        out["torch_num_threads"] = out["torch_interop_threads"] = None
    return out


def git_info(cwd: str | Path | None = None) -> dict[str, Any] | None:
    """Commit and dirty flag of the git work tree at `cwd`; None outside a work tree or without git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        date = git("show", "-s", "--format=%cI", "HEAD")  # committer date: `rexbench history` order
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty, "date": date}


# ---------------------------------------------------------------------------------- identity


def _slug(text: str) -> str:
    text = re.sub(
        r"\((r|tm|c)\)|@.*$|\b(cpu|processor|nvidia|geforce|\d+-core)\b", " ", text, flags=re.I
    )
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def hardware_identity(cpu: dict[str, Any], gpus: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields that identify the hardware, and nothing volatile. Input to `machine_id`."""
    return {
        "arch": cpu.get("arch"),
        "vendor": cpu.get("vendor"),
        "brand": cpu.get("brand"),
        "family": cpu.get("family"),
        "model": cpu.get("model"),
        "cores": cpu.get("usable_cores"),
        "flags": cpu.get("flags", []),
        "gpus": sorted(str(g.get("name")) for g in gpus),
    }


#: Names this machine in place of the hardware hash (see `machine_id`).
MACHINE_ID_VAR = "REXBENCH_MACHINE_ID"


def machine_id_override() -> str | None:
    """The machine id set by REXBENCH_MACHINE_ID, or None when it is unset or blank."""
    return os.environ.get(MACHINE_ID_VAR, "").strip() or None


def machine_id(cpu: dict[str, Any] | None = None, gpus: list[dict[str, Any]] | None = None) -> str:
    """Folder name for this machine's records: REXBENCH_MACHINE_ID when set, else readable slug +
    8 hex of the hardware identity (`hardware_id`)."""
    return machine_id_override() or hardware_id(cpu, gpus)


def hardware_id(cpu: dict[str, Any] | None = None, gpus: list[dict[str, Any]] | None = None) -> str:
    """Readable slug + 8 hex of the hardware identity.

    Example: "amd-epyc-2c-3f1a9b0e", "intel-xeon-gold-6248-8c-tesla-v100-sxm2-32gb-1b2c3d4e".
    """
    cpu = cpu_info() if cpu is None else cpu
    gpus = gpu_info()["gpus"] if gpus is None else gpus
    identity = hardware_identity(cpu, gpus)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    parts = [_slug(str(cpu.get("brand", "cpu")))[:40] or "cpu", f"{cpu.get('usable_cores')}c"]
    if gpus:
        names = identity["gpus"]
        parts.append(_slug(names[0])[:30] + (f"-x{len(names)}" if len(names) > 1 else ""))
    return "-".join([*parts, digest])


def fingerprint(cwd: str | Path | None = None) -> dict[str, Any]:
    """Everything about this machine and process that a record needs; never raises.

    Call it after the run's thread count is set, so that `threads` shows what the run used.
    """
    cpu = cpu_info()
    gpu = gpu_info()
    hardware = hardware_id(cpu, gpu["gpus"])
    named = machine_id_override()
    return {
        "machine_id": named or hardware,
        **({"hardware_id": hardware} if named else {}),
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "gpus": gpu["gpus"],
        "gpu_error": gpu["gpu_error"],
        "software": software_info(),
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "platform": platform.platform(),
        },
        "threads": thread_info(),
        "git": git_info(cwd),
    }


#: Fingerprint fields outside the machine id that still change latency; listed by `differences`.
COMPARED_SOFTWARE = ("torch", "cuda", "cudnn", "torch_cpu_capability", "python")


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable differences between two fingerprints that matter for latency comparison.

    The first entry is the machine id when the hardware differs; then software and threads.
    """
    out = []
    if a.get("machine_id") != b.get("machine_id"):
        out.append(f"machine: {a.get('machine_id')} vs {b.get('machine_id')}")
    sa, sb = a.get("software", {}), b.get("software", {})
    out += [f"{k}: {sa.get(k)} vs {sb.get(k)}" for k in COMPARED_SOFTWARE if sa.get(k) != sb.get(k)]
    ta, tb = a.get("threads", {}), b.get("threads", {})
    for key in ("torch_num_threads", "env"):
        if ta.get(key) != tb.get(key):
            out.append(f"threads.{key}: {ta.get(key)} vs {tb.get(key)}")
    return out
