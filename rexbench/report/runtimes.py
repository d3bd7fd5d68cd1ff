"""The "fastest runtime per model" table: every configuration of a model (eager, compiled PyTorch,
ONNX Runtime, OpenVINO ...) as a speed-up over eager PyTorch with its bootstrap 95% CI, and which
one wins; a row per thread count and allocator where the records have several. Configurations
whose output differs from eager fp32 (`Record.valid`) are shown as invalid and never win; records
of one model timed in different runs are said to be apart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rexbench.records.schema import Record
from rexbench.report.latest import allocator, tags, threads, varying
from rexbench.report.render import Section, fmt_latency, fmt_ms

_EAGER = "eager"


def _groups(records: Sequence[Record]) -> dict[tuple[Any, ...], list[Record]]:
    """Records with timing by (model, device, dtype, batch, resolution, threads, allocator),
    fastest first: a row compares configurations, never thread counts or allocators."""
    out: dict[tuple[Any, ...], list[Record]] = {}
    for r in records:
        if r.latency is not None:
            key = (r.model.spec, r.device, r.dtype, r.batch_size, r.resolution)
            out.setdefault((*key, threads(r) or 0, allocator(r)), []).append(r)
    for group in out.values():
        group.sort(key=lambda r: r.latency.median_ms)
    return dict(sorted(out.items(), key=lambda kv: (kv[0][1], kv[0][0], *kv[0][2:4], *kv[0][5:])))


def _eager(group: list[Record]) -> Record | None:
    """The eager PyTorch record of the group, at the group's dtype (label "eager" or "eager+bf16")."""
    for r in group:
        if r.valid and r.run.label.split("+")[0] == _EAGER and r.run.config.get("runtime") is None:
            return r
    return None


def speedup(record: Record, eager: Record) -> dict[str, float]:
    """median(eager) / median(record) and its 95% CI (2.5% and 97.5% bootstrap quantiles), as the
    claims section computes its speed-ups."""
    from rexbench.stats import Samples, ratio_interval

    ci = ratio_interval(Samples(record.samples), Samples(eager.samples), "median", alpha=0.025)
    return {"speedup": ci.ratio, "ci_low": ci.low, "ci_high": ci.high}


def _cell(r: Record, eager: Record | None) -> tuple[str, dict[str, Any]]:
    lat = r.latency
    data: dict[str, Any] = {
        "config": r.run.label,
        "config_id": r.run.config_id,
        **lat.to_dict(),
        "valid": r.valid,
        "run_id": r.run_id,
    }
    if not r.valid:
        data["parity"] = r.parity_text
        return f"{r.run.label} INVALID", data
    if eager is None or r is eager:
        return f"{r.run.label} {fmt_ms(lat.median_ms)} ms", data
    data.update(speedup(r, eager))
    return (
        f"{r.run.label} {data['speedup']:.2f}x [{data['ci_low']:.2f}, {data['ci_high']:.2f}]",
        data,
    )


def runtime_section(records: Sequence[Record]) -> Section:
    """One row per model, device, dtype and batch: eager latency, every configuration's speed-up
    over it (fastest first) and the fastest valid configuration."""
    s = Section(
        "runtimes",
        "Fastest runtime per model",
        [
            "model",
            "device",
            "eager ms [95% CI]",
            "speed-up over eager [95% CI], fastest first",
            "fastest",
            "timed",
        ],
        right={2},
        intro="Every configuration measured for a model (PyTorch eager, compiled, ONNX Runtime "
        "`ort`, OpenVINO `openvino`), as median(eager) / median(configuration). INVALID: the "
        "configuration's output differs from the eager fp32 model's beyond tolerance; it is never "
        "the fastest.",
    )
    apart, varies = 0, varying([r for r in records if r.latency is not None])
    for (spec, device, dtype, batch, res, *_), group in _groups(records).items():
        eager = _eager(group)
        cells, configs = zip(*(_cell(r, eager) for r in group), strict=True)
        fastest = next((r for r in group if r.valid), None)
        together = len({r.run_id for r in group}) == 1 and group[0].run_id is not None
        apart += not together and len(group) > 1
        s.add(
            [
                spec,
                ", ".join([f"{device} {dtype}", f"batch {batch}", *tags(group[0], varies)]),
                fmt_latency(eager.latency) if eager is not None else "-",
                "; ".join(cells),
                f"{fastest.run.label} ({fmt_ms(fastest.latency.median_ms)} ms)" if fastest else "-",
                "together" if together or len(group) == 1 else "apart",
            ],
            {
                "model": spec,
                "device": device,
                "dtype": dtype,
                "batch_size": batch,
                "resolution": res,
                "threads": threads(group[0]),
                "allocator": allocator(group[0]),
                "configs": list(configs),
                "fastest": fastest.run.label if fastest else None,
                "measured_together": together,
            },
        )
    s.notes.append(
        "CI: percentile bootstrap of the ratio of medians (2,000 resamples, seed 0); timed "
        "'together': every configuration of the row in the same interleaved rounds."
    )
    if apart:
        s.notes.append(
            f"{apart} row(s) combine records timed in different runs: machine drift between them is "
            "not cancelled; measure the configurations together (`--config eager,max,ort,openvino`)."
        )
    return s
