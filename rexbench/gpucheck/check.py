"""The measuring half of the GPU check (benchmarks/gpu_check.py): one model at a time, built,
counted, prepared under every configuration (each on its own: one that fails is one line, the rest
go on), timed interleaved with the drift anchor as `rexbench profile` times them (records written),
then checked: the validity of each record (GPU slowdown, recompilations, CUDA graphs recorded), the
output of every configuration against eager fp32 (rexbench.gpucheck.parity), and for the headline
model rexbench's median against independent timers on the same prepared model
(rexbench.gpucheck.timers).

Every step ends in `CheckRow`s: PASS, FAIL, WARN (marked, not failed) or SKIP (not run, and why).
The prepare / device / anchor functions are looked up on rexbench.measure.run.profile at call time, as
`profile_models` uses them, so a test's fake device reaches them too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.gpucheck.parity import output_parity
from rexbench.gpucheck.rows import FAIL, PASS, SKIP, WARN, CheckRow
from rexbench.gpucheck.timers import agreement_rows, default_arms
from rexbench.measure.config import RunConfig
from rexbench.measure.run import profile as prof
from rexbench.measure.run.rounds import PreparedConfig, RoundOptions, first_line, measure_prepared
from rexbench.measure.timing.loop import backend_settings

if TYPE_CHECKING:
    from torch import nn

    from rexbench.gpucheck.timers import ArmsFn
    from rexbench.records.schema import Record

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "WARN",
    "CheckRow",
    "CheckSettings",
    "check_model",
    "configs_for",
]

HEADLINE = "rexnet_x2.0"


@dataclass(frozen=True)
class CheckSettings:
    """Sizes and places of one check run. The GPU check: batch 64, the models' own resolution, 200
    timed calls after 20 warm-up calls; a dry run: CPU, batch 2, 32 px, a few calls."""

    device: str = "cuda"
    batch_size: int = 64
    resolution: int | None = None
    runs: int = 200
    warmup: int = 20
    round_size: int = 10
    flush_l2: bool = False
    agreement_rounds: int = 10
    agreement_per_round: int = 20
    dry_run: bool = False
    out_dir: Path | None = None
    headline: str = HEADLINE

    @classmethod
    def dry(cls, **overrides: Any) -> CheckSettings:
        fields = dict(device="cpu", batch_size=2, resolution=32, runs=20, warmup=2, round_size=5,
                      agreement_rounds=4, agreement_per_round=5, dry_run=True)  # fmt: skip
        return cls(**{**fields, **overrides})


def configs_for(spec: str, settings: CheckSettings) -> list[RunConfig]:
    """compile_cl for every model; the headline model also eager, max, fp16, bf16 and CUDA graphs."""
    s = settings
    common = dict(device=s.device, batch_size=s.batch_size, resolution=s.resolution, runs=s.runs,
                  warmup=s.warmup, flush_l2=s.flush_l2)  # fmt: skip
    configs = [RunConfig.preset("compile_cl", **common)]
    if spec == s.headline:
        configs += [
            RunConfig.preset("eager", **common),
            RunConfig.preset("max", **common),
            RunConfig.preset("compile_cl", **common, dtype="fp16"),
            RunConfig.preset("compile_cl", **common, dtype="bf16"),
            RunConfig.preset("cudagraphs", **common),
        ]
    return configs


@dataclass
class ModelResult:
    records: list[Record] = field(default_factory=list)
    rows: list[CheckRow] = field(default_factory=list)
    seconds: float = 0.0


def check_model(
    spec: str,
    settings: CheckSettings,
    *,
    progress: Callable[[Any], None] | None = None,
    arms: ArmsFn | None = None,
    deadline: float | None = None,
) -> ModelResult:
    """Everything the check does with one model; never raises (but KeyboardInterrupt).

    deadline: a time.monotonic() value after which no further configuration is prepared (each
    one left is a SKIP row); what was prepared is still measured and checked."""
    t0 = time.perf_counter()
    result = ModelResult()
    try:
        _check_model(spec, settings, result, _Hooks(progress, arms, deadline))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # anything unforeseen is one line, and the check goes on
        result.rows.append(CheckRow("model", spec, FAIL, first_line(exc)))
    finally:
        prof._reset_compiler()
        _empty_cache(settings.device)
    result.seconds = time.perf_counter() - t0
    return result


@dataclass(frozen=True)
class _Hooks:
    progress: Callable[[Any], None] | None = None
    arms: ArmsFn | None = None
    deadline: float | None = None

    def late(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline


def _check_model(spec: str, settings: CheckSettings, result: ModelResult, hooks: _Hooks) -> None:
    from rexbench.measure.machine import env as envmod
    from rexbench.models.factory import create_model
    from rexbench.models.shapes import resolve_input_shape
    from rexbench.spec import parse

    parsed = parse(spec)
    model = create_model(parsed)
    shape = resolve_input_shape(parsed, model, None, settings.resolution)
    counts = prof.count(model, shape, spec)
    items: list[PreparedConfig] = []
    for config in configs_for(spec, settings):
        if hooks.late():
            result.rows.append(CheckRow("prepare", _subject(spec, config), SKIP, "budget spent"))
            continue
        item, row = _prepare(
            model, config, spec=spec, shape=shape, counts=counts, settings=settings
        )
        result.rows.append(row)
        if item is not None:
            items.append(item)
    if not items:
        return
    base_env = envmod.fingerprint()
    result.records = _measure(
        parsed, items, base_env, settings, progress=hooks.progress, rows=result.rows
    )
    for record in result.records:
        result.rows += record_rows(record)
    result.rows += parity_rows(model, items, spec, settings)
    if spec == settings.headline:
        result.rows += agreement_rows(items, result.records, settings, hooks.arms or default_arms)
    items.clear()


def _subject(spec: str, config: RunConfig) -> str:
    return f"{spec} {config.label}"


def _prepare(
    model: nn.Module,
    config: RunConfig,
    *,
    spec: str,
    shape: tuple[int, int, int],
    counts: dict[str, Any],
    settings: CheckSettings,
) -> tuple[PreparedConfig | None, CheckRow]:
    """One configuration prepared under its own backend settings, or the line saying why not."""
    from rexbench.measure.machine import env as envmod

    subject = _subject(spec, config)
    try:
        with backend_settings(config.threads, config.cudnn_benchmark, config.allow_tf32) as state:
            prepared = prof.prepare(model, config, input_shape=shape)
            threads = envmod.thread_info()
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        text = first_line(exc)
        if settings.dry_run and config.dtype != "fp32" and "not supported" in text:
            return None, CheckRow("prepare", subject, SKIP, f"{text} (a dry run on this CPU)")
        return None, CheckRow("prepare", subject, FAIL, text)
    compiled = f"compiled in {prepared.compile_s:.1f} s" if prepared.compile_s else "not compiled"
    graphs = prepared.cudagraphs
    if graphs is not None:
        compiled += f"; CUDA graph warm-up {graphs['warmup_calls']} call(s)"
    detail = f"{compiled}; input {tuple(prepared.input.shape)} {prepared.to_dict()['input_dtype']}"
    return PreparedConfig(config, prepared, state, threads, counts), CheckRow(
        "prepare", subject, PASS, detail
    )


def _measure(
    spec: Any,
    items: list[PreparedConfig],
    base_env: dict[str, Any],
    settings: CheckSettings,
    *,
    progress: Callable[[Any], None] | None,
    rows: list[CheckRow],
) -> list[Record]:
    """All configurations interleaved; when that fails, each one alone (one line per failure)."""
    device = items[0].prepared.device
    options = RoundOptions(
        device=device,
        anchor=prof.make_anchor(device),
        ops=prof.device_ops(device),
        clock=time.perf_counter_ns,
        round_size=settings.round_size,
        out_dir=settings.out_dir,
        progress=progress,
    )
    try:
        return measure_prepared(spec, items, base_env, options)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        rows.append(CheckRow("profile", f"{spec} (interleaved)", FAIL, first_line(exc)))
    records: list[Record] = []
    for item in items:
        try:
            records += measure_prepared(spec, [item], base_env, options)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            rows.append(
                CheckRow("profile", _subject(str(spec), item.config), FAIL, first_line(exc))
            )
    return records


def record_rows(record: Record) -> list[CheckRow]:
    """The record written, and what its validity says (see rexbench.measure.checks.validity)."""
    from rexbench.measure.checks.validity import recompiled_of
    from rexbench.measure.machine.gpu_state import clock_range, slowdown

    subject = f"{record.model.spec} {record.run.label}"
    lat = record.latency
    assert lat is not None
    cudnn = "on" if record.run.config.get("cudnn_benchmark") else "off"
    rows = [CheckRow("profile", subject, PASS,
                     f"median {lat.median_ms:.3f} ms [{lat.ci_low_ms:.3f}, {lat.ci_high_ms:.3f}], "
                     f"{lat.throughput:.0f} img/s, n={lat.n}, cuDNN benchmark {cudnn}")]  # fmt: skip
    validity = record.timing.validity if record.timing else {}
    gpu = validity.get("gpu")
    if gpu is not None:
        reasons, clocks = slowdown(gpu), clock_range(gpu)
        readings = len(gpu.get("samples", []))
        if gpu.get("error"):
            rows.append(CheckRow("gpu state", subject, WARN, f"no NVML readings: {gpu['error']}"))
        elif reasons:
            rows.append(CheckRow("gpu state", subject, WARN, "slowdown: " + "; ".join(reasons)))
        else:
            used = gpu.get("functions") or {}
            span = f"SM clock {clocks[0]}-{clocks[1]} MHz, " if clocks else ""
            span += f"via {used.get('reasons')} and {used.get('temperature')}, "
            rows.append(
                CheckRow("gpu state", subject, PASS, f"{span}{readings} readings, no slowdown")
            )
    if "recompiles" in validity:
        n = recompiled_of(record)
        status = FAIL if n else PASS
        rows.append(
            CheckRow("recompiles", subject, status, f"{n} graph(s) compiled after the first call")
        )
    graphs = (record.timing.preparation if record.timing else {}).get("cudagraphs")
    if graphs is not None:
        ok = {True: PASS, False: FAIL, None: WARN}[graphs.get("recorded")]
        rows.append(CheckRow("cudagraphs", subject, ok,
                             f"replay seen after {graphs['warmup_calls']} warm-up call(s) "
                             f"(states {graphs.get('states')}); {graphs.get('cudagraph_skips', 0)} "
                             "graph(s) skipped"))  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------ parity


def parity_rows(
    model: nn.Module, items: Sequence[PreparedConfig], spec: str, settings: CheckSettings
) -> list[CheckRow]:
    """Every configuration's output on its own input against eager fp32 NCHW on the same values."""
    import copy

    import torch

    from rexbench.measure.backends.inputs import make_input

    first = items[0]
    device = str(first.prepared.input.device)
    plain = replace(first.config, device=device, dtype="fp32", channels_last=False, flush_l2=False)
    x = make_input(plain, input_shape=tuple(first.prepared.input.shape[1:]))
    with backend_settings(None, True, False), torch.inference_mode():
        reference = copy.deepcopy(model).eval().to(device)(x).float()
    rows = []
    for item in items:
        subject = _subject(spec, item.config)
        try:
            with backend_settings(item.backend["threads"], item.config.cudnn_benchmark,
                                  item.config.allow_tf32), torch.inference_mode():  # fmt: skip
                output = item.prepared.run().float().clone()  # before the next call reuses it
            p = output_parity(reference, output, item.config.dtype)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            rows.append(CheckRow("parity", subject, FAIL, first_line(exc)))
            continue
        if "why" in p:
            rows.append(CheckRow("parity", subject, FAIL, p["why"]))
            continue
        rows.append(CheckRow("parity", subject, PASS if p["ok"] else FAIL,
                             f"rel. RMSE {p['rel_rmse']:.1e} (limit {p['tolerance']:.2g}, "
                             f"{item.config.dtype})"
                             + ("" if p["finite"] else "; NaN/inf in the output")))  # fmt: skip
    return rows


def _empty_cache(device: str) -> None:
    if device.startswith("cuda"):
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:
            pass
