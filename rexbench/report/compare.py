"""Hardware comparison: one model's latency on several machines, the speed of every machine relative
to a reference machine, where the ranking of models changes, and the fingerprints side by side.

Latencies are compared only between records with identical settings (batch size, dtype,
resolution, configuration: `rexbench.records.derived.COMPARED_SETTINGS`); otherwise `sections()` raises a
one-line RexbenchError naming what differs, unless `allow_mismatch` is set, in which case the
differences are listed in the report and the affected cells are marked with '*'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.measure.machine.env import differences
from rexbench.records.schema import Record
from rexbench.report.latest import threads, threads_text
from rexbench.report.render import Section, fmt_latency

# (model spec, device kind, variant: "" or "label, dtype, batch, res[, threads]")
RowKey = tuple[str, str, str]


def resolve_reference(reference: str | None, machines: Sequence[str]) -> str:
    """The reference machine: exact id, else a unique case-insensitive part of one; default first."""
    if not machines:
        raise RexbenchError("no records to compare")
    if reference is None:
        return machines[0]
    if reference in machines:
        return reference
    matches = [mid for mid in machines if reference.lower() in mid.lower()]
    if len(matches) == 1:
        return matches[0]
    what = "matches several machines" if matches else "matches no machine"
    raise RexbenchError(f"--reference {reference!r} {what}; choose one of {', '.join(machines)}")


def _variant(r: Record) -> str:
    """The configuration of a row; with the thread count where it is not the machine's default, so
    that each machine's default aligns with the others' and `--threads N` runs with each other."""
    parts = [r.run.label, r.dtype, f"batch {r.batch_size}", f"{r.resolution}px"]
    default = (r.env.get("threads") or {}).get("torch_num_threads")
    if default is not None and threads(r) != default:
        parts.append(threads_text(threads(r)))
    return ", ".join(parts)


def rows(machines: dict[str, list[Record]]) -> dict[RowKey, dict[str, Record]]:
    """Records aligned across machines (or folders: `rexbench.report.machines`): one row per model
    and device kind, split by configuration only where a machine holds several configurations of
    the same model on that device (and by thread count where its records differ in it)."""
    per: dict[tuple[str, str], dict[str, list[Record]]] = {}
    for mid, records in machines.items():
        for r in records:
            if r.latency is not None:
                per.setdefault((r.model.spec, r.device_kind), {}).setdefault(mid, []).append(r)
    out: dict[RowKey, dict[str, Record]] = {}
    for (spec, kind), found in per.items():
        if all(len(v) == 1 for v in found.values()):
            out[(spec, kind, "")] = {mid: v[0] for mid, v in found.items()}
            continue
        for mid, group in found.items():
            for r in group:
                variant = _variant(r)
                if mid in out.get((spec, kind, variant), {}):
                    variant += f", {r.run.config_id}"
                out.setdefault((spec, kind, variant), {})[mid] = r
    return dict(sorted(out.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])))


def mismatches(aligned: dict[RowKey, dict[str, Record]], ref: str) -> list[dict[str, Any]]:
    """Rows whose records differ in a compared setting between the reference (or first) machine
    and another machine."""
    out = []
    for (spec, kind, _), recs in aligned.items():
        base_id = ref if ref in recs else next(iter(recs))
        for mid, r in recs.items():
            diffs = recs[base_id].setting_differences(r) if mid != base_id else []
            if diffs:
                out.append(
                    {
                        "model": spec,
                        "device": kind,
                        "machines": [base_id, mid],
                        "differences": diffs,
                    }
                )
    return out


def mismatch_error(found: list[dict[str, Any]]) -> RexbenchError:
    shown = [
        f"{d['model']} on {d['device']}: {', '.join(d['differences'])} "
        f"({d['machines'][0]} vs {d['machines'][1]})"
        for d in found[:3]
    ]
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return RexbenchError(
        f"records measured with different settings: {'; '.join(shown)}{more}; "
        "compare them anyway with --allow-mismatch"
    )


def speed(ref: Record, other: Record) -> float:
    """How many times faster `other` ran than `ref` (ratio of median latencies)."""
    return ref.latency.median_ms / other.latency.median_ms


def _ranks(aligned: dict[RowKey, dict[str, Record]], keys: list[RowKey], mid: str) -> dict:
    order = sorted(keys, key=lambda k: aligned[k][mid].latency.median_ms)
    return {k: i + 1 for i, k in enumerate(order)}


def _common(aligned: dict[RowKey, dict[str, Record]], machines: Sequence[str], kind: str) -> list:
    """Rows measured, validly (rexbench.measure.checks.parity), on every one of `machines`."""
    return [
        k
        for k, recs in aligned.items()
        if k[1] == kind and all(x in recs and recs[x].valid for x in machines)
    ]


def sections(
    machines: dict[str, list[Record]], ref: str, allow_mismatch: bool = False
) -> list[Section]:
    """latency per machine, speed vs reference, ranking changes, fingerprints (and settings
    differences when allowed), for records grouped by machine (`Record.by_machine`) or folder."""
    ids = list(machines)
    aligned = rows(machines)
    found = mismatches(aligned, ref)
    if found and not allow_mismatch:
        raise mismatch_error(found)
    marked = {(d["model"], d["device"], d["machines"][1]) for d in found}
    out = [_latency_section(aligned, ids, ref, marked)]
    out += [_speed_section(aligned, ids, ref), _ranking_section(aligned, ids, ref)]
    if found:
        diff = Section(
            "settings",
            "Settings that differ (compared anyway: --allow-mismatch)",
            ["model", "device", "machines", "differences"],
        )
        for d in found:
            diff.add(
                [d["model"], d["device"], " vs ".join(d["machines"]), "; ".join(d["differences"])],
                d,
            )
        out.append(diff)
    out.append(fingerprint_section(machines, ref))
    return out


def _latency_section(aligned: dict, ids: list[str], ref: str, marked: set) -> Section:
    others = [mid for mid in ids if mid != ref]
    s = Section(
        "hardware",
        f"Latency per machine (ms per batch, median [95% CI]) and speed vs {ref}",
        [
            "model",
            "device",
            "config",
            *[f"{mid} ms" for mid in ids],
            *[f"{mid} speed" for mid in others],
        ],
        right=set(range(3, 3 + len(ids) + len(others))),
        intro=f"Reference machine: `{ref}`. speed = reference median / machine median (2.00x: twice "
        "as fast as the reference). #k: rank by latency on that machine among the models measured "
        "on every machine.",
    )
    ranks = {
        (kind, mid): _ranks(aligned, _common(aligned, ids, kind), mid)
        for kind in ("cpu", "cuda")
        for mid in ids
    }
    for key, recs in aligned.items():
        spec, kind, variant = key
        cells, data = [], {"model": spec, "device": kind, "variant": variant, "machines": {}}
        for mid in ids:
            r = recs.get(mid)
            if r is None:
                cells.append("-")
                continue
            lat, rank = r.latency, ranks[(kind, mid)].get(key)
            star = "*" if (spec, kind, mid) in marked else ""
            star += "" if r.valid else " INVALID"
            cells.append(f"{fmt_latency(lat)}{star}" + (f" #{rank}" if rank else ""))
            data["machines"][mid] = {**lat.to_dict(), **r.settings, "rank": rank}
        for mid in others:
            ok = ref in recs and mid in recs and recs[ref].valid and recs[mid].valid
            value = speed(recs[ref], recs[mid]) if ok else None
            cells.append(f"{value:.2f}x" if value is not None else "-")
            data["machines"].setdefault(mid, {})["speed_vs_reference"] = value
        first = next(iter(recs.values()))
        config = variant or f"{first.run.label}, {first.dtype}, batch {first.batch_size}"
        s.add([spec, kind, config, *cells], data)
    if marked:
        s.notes.append(
            "*: measured with other settings than the reference (see 'Settings that differ')."
        )
    return s


def _speed_section(aligned: dict, ids: list[str], ref: str) -> Section:
    s = Section(
        "speed",
        f"Speed of every machine relative to {ref}",
        ["machine", "device", "models", "speed (geometric mean)", "min", "max"],
        right={2, 3, 4, 5},
        intro="Over the models measured on both machines; > 1: faster than the reference.",
    )
    for mid in ids:
        for kind in ("cpu", "cuda"):
            keys = _common(aligned, [ref, mid], kind)
            if not keys:
                continue
            ratios = [speed(aligned[k][ref], aligned[k][mid]) for k in keys]
            geo = math.exp(sum(math.log(v) for v in ratios) / len(ratios))
            label = f"{mid} (reference)" if mid == ref else mid
            s.add(
                [
                    label,
                    kind,
                    str(len(ratios)),
                    f"{geo:.2f}x",
                    f"{min(ratios):.2f}x",
                    f"{max(ratios):.2f}x",
                ],
                {
                    "machine": mid,
                    "device": kind,
                    "models": len(ratios),
                    "geomean": geo,
                    "min": min(ratios),
                    "max": max(ratios),
                    "reference": mid == ref,
                },
            )
    return s


def _overlap(a: Record, b: Record) -> bool:
    la, lb = a.latency, b.latency
    return la.ci_low_ms <= lb.ci_high_ms and lb.ci_low_ms <= la.ci_high_ms


def ranking_changes(aligned: dict, ids: list[str], ref: str) -> list[dict[str, Any]]:
    """Pairs of models whose latency order on a machine is the reverse of the reference's."""
    out = []
    for mid in ids:
        if mid == ref:
            continue
        for kind in ("cpu", "cuda"):
            keys = sorted(
                _common(aligned, [ref, mid], kind), key=lambda k: aligned[k][ref].latency.median_ms
            )
            for i, fast in enumerate(keys):
                for slow in keys[i + 1 :]:
                    a, b = aligned[fast], aligned[slow]
                    if b[mid].latency.median_ms < a[mid].latency.median_ms:
                        out.append(
                            {
                                "machine": mid,
                                "device": kind,
                                "faster_on_reference": fast[0],
                                "faster_here": slow[0],
                                "reference_ms": [
                                    a[ref].latency.median_ms,
                                    b[ref].latency.median_ms,
                                ],
                                "machine_ms": [a[mid].latency.median_ms, b[mid].latency.median_ms],
                                "within_noise": _overlap(a[ref], b[ref])
                                or _overlap(a[mid], b[mid]),
                            }
                        )
    return out


def _ranking_section(aligned: dict, ids: list[str], ref: str) -> Section:
    s = Section(
        "ranking",
        "Where the ranking of models changes between machines",
        ["machine", "device", "on the reference", "on this machine", "within noise"],
        intro=f"Pairs of models whose order by latency differs from `{ref}`.",
    )
    for c in ranking_changes(aligned, ids, ref):
        a, b = c["faster_on_reference"], c["faster_here"]
        ra, rb = c["reference_ms"]
        ma, mb = c["machine_ms"]
        s.add(
            [
                c["machine"],
                c["device"],
                f"{a} ({ra:.2f} ms) < {b} ({rb:.2f} ms)",
                f"{b} ({mb:.2f} ms) < {a} ({ma:.2f} ms)",
                "yes (95% CIs overlap)" if c["within_noise"] else "no",
            ],
            c,
        )
    if not s.rows:
        s.notes.append("The models rank in the same order on every machine.")
    return s


def _fingerprint(env: dict[str, Any], records: list[Record]) -> dict[str, str]:
    cpu, sw, th = env.get("cpu") or {}, env.get("software") or {}, env.get("threads") or {}
    gpus = [
        f"{g.get('name')}"
        + (f" ({g['memory_total_mib']} MiB)" if g.get("memory_total_mib") else "")
        for g in env.get("gpus") or []
    ]
    git = env.get("git") or {}
    return {
        "CPU": str(cpu.get("brand", "-")),
        "cores (usable / logical / physical)": " / ".join(
            str(cpu.get(k, "-")) for k in ("usable_cores", "logical_cores", "physical_cores")
        ),
        "CPU kernel flags": " ".join(cpu.get("flags") or []) or "-",
        "GPUs": "; ".join(gpus) or "-",
        "torch / CUDA / cuDNN": " / ".join(str(sw.get(k)) for k in ("torch", "cuda", "cudnn")),
        "torch CPU capability": str(sw.get("torch_cpu_capability", "-")),
        "Python": str(sw.get("python", "-")),
        "OS": str((env.get("os") or {}).get("platform", "-")),
        "torch threads": str(th.get("torch_num_threads", "-")),
        "thread variables": " ".join(f"{k}={v}" for k, v in (th.get("env") or {}).items()) or "-",
        "rexbench": str(records[0].rexbench_version),
        "git commit": (git.get("commit", "")[:10] + (" (dirty)" if git.get("dirty") else ""))
        or "-",
        "records / configs": f"{len(records)} / "
        + ", ".join(sorted({f"{r.run.label} on {r.device}" for r in records})),
    }


def fingerprint_section(machines: dict[str, list[Record]], ref: str | None = None) -> Section:
    """The machines' fingerprints side by side (first record of each), with software differences."""
    ids = list(machines)
    prints = {mid: _fingerprint(recs[0].env, recs) for mid, recs in machines.items()}
    title = "Machine" if len(ids) == 1 else "Machines side by side"
    s = Section("machines", title, ["", *ids])
    for field in prints[ids[0]]:
        s.add(
            [field, *[prints[mid][field] for mid in ids]],
            {"field": field, **{mid: prints[mid][field] for mid in ids}},
        )
    ref = ref or ids[0]
    for mid, recs in machines.items():
        if mid != ref:
            diffs = [
                d
                for d in differences(machines[ref][0].env, recs[0].env)
                if not d.startswith("machine:")
            ]
            if diffs:
                s.notes.append(f"{mid} vs {ref}: {'; '.join(diffs)}")
        inner = {d for r in recs[1:] for d in differences(recs[0].env, r.env)}
        if inner:
            s.notes.append(f"records of {mid} differ among themselves: {'; '.join(sorted(inner))}")
    return s
