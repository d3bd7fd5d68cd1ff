"""Baselines: the machine-independent counts in baselines/counts.json, and reference records in
baselines/<machine-id>/ that `rexbench gate` compares against.

A counts entry (one per canonical spec in counts.json, see `store.write_counts`):

    "efficientnet_b3": {"resolution": 300, "params_total": 12233232, "params_trainable": 12233232,
                        "macs_conv": 1827141392, "macs_conv@224": 962708240}

`macs_conv` is at the model's own input (`resolution`, or `input_shape` "CxHxW" when not 3xRxR);
`macs_conv@K` at input K ("224" means 3x224x224). py: specs also store `source_sha256`.
Counts are exact integers from `counting.count_model` (the Conv + Linear rule). The model is built
on the meta device (shapes only: no memory, no weight init, no arithmetic), which gives the same
integers as a real forward on every built-in model and is ~5x faster; a model that cannot run on
meta is counted on the CPU instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError, first_line

if TYPE_CHECKING:
    from rexbench.records.schema import Record
    from rexbench.spec import ModelSpec

PARAMS = ("params_total", "params_trainable")
_PARAM_KEYS = {
    "params": "params_total",
    "params_total": "params_total",
    "params_trainable": "params_trainable",
}
_MAC_KEYS = ("macs_conv", "macs_fvcore", "macs_thop", "flops_torch")


def shape_key(shape: Sequence[int]) -> str:
    """(1, 3, 224, 224) or (3, 224, 224) -> "224"; any other input -> "CxHxW"."""
    chw = tuple(int(d) for d in shape)[-3:]
    if chw[0] == 3 and chw[1] == chw[2]:
        return str(chw[1])
    return "x".join(map(str, chw))


def flat_counts(counts: Mapping[str, Any]) -> dict[str, int]:
    """A counts entry or a record's `counts` -> {"params_total": n, "macs_conv@224": n, ...}.

    Reads both forms: counts.json entries (`resolution` / `input_shape` + `macs_conv`,
    `macs_conv@K`) and profile records (`input_shape` [1, C, H, W], `params`, `macs_conv`).
    Non-integer values (None, conventions text) are left out.
    """
    if counts.get("input_shape"):
        shape = counts["input_shape"]
        key = shape_key(shape) if not isinstance(shape, str) else shape_key(shape.split("x"))
    elif counts.get("resolution"):
        key = str(counts["resolution"])
    else:
        key = None
    out: dict[str, int] = {}
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if name in _PARAM_KEYS:
            out[_PARAM_KEYS[name]] = value
        elif "@" in name and name.partition("@")[0] in _MAC_KEYS:
            out[name] = value
        elif name in _MAC_KEYS and key is not None:
            out[f"{name}@{key}"] = value
    return out


# ------------------------------------------------------------------------------ counting now


def count_entry(
    spec: ModelSpec,
    extra_shapes: Iterable[Sequence[int]] = (),
    input_shape: str | Sequence[int] | None = None,
    resolution: int | None = None,
) -> dict[str, Any]:
    """The counts.json entry of `spec`: params and macs_conv at its input and at 224 (when
    different), plus any (C, H, W) in `extra_shapes` (e.g. the inputs of saved records).

    Its input (`resolution` / `input_shape` keys): the model's default (rexbench.models.shapes), else, for
    a model whose input cannot be guessed, the input that `input_shape` / `resolution` give (these
    are counted as extra inputs too), else the first of `extra_shapes`.
    """
    from rexbench.models.shapes import format_shape

    extra = [tuple(int(d) for d in s)[-3:] for s in extra_shapes]
    default, params, macs = _count(spec, extra, [(3, 224, 224)], input_shape, resolution)
    entry: dict[str, Any] = {}
    if default[0] == 3 and default[1] == default[2]:
        entry["resolution"] = default[1]
    else:
        entry["input_shape"] = format_shape(default)
    entry.update(params)
    entry["macs_conv"] = macs.pop(default)
    entry.update({f"macs_conv@{shape_key(shape)}": value for shape, value in macs.items()})
    if spec.source == "py":
        from rexbench.models.provenance import source_hash

        entry["source_sha256"] = source_hash(spec)
    return entry


def _count(
    spec: ModelSpec,
    extra: list[tuple[int, ...]],
    optional: list[tuple[int, ...]],
    input_shape: str | Sequence[int] | None = None,
    resolution: int | None = None,
) -> tuple[tuple[int, ...], dict[str, int], dict[tuple[int, ...], int]]:
    """(default input, params, {input: macs_conv}) with the model built once, on meta, else on CPU.

    An `optional` input the model cannot take (e.g. 224 for a fixed-size ViT) is left out.
    """
    import torch

    from rexbench.measure.counting.counts import count_model
    from rexbench.models.factory import build
    from rexbench.models.shapes import check_options, resolve_input_shape

    check_options(spec, input_shape, resolution)

    def run(device: str) -> tuple[tuple[int, ...], dict[str, int], dict[tuple[int, ...], int]]:
        with torch.device(device):
            model = build(spec).eval()
            given = []
            if input_shape is not None or resolution is not None:
                given.append(resolve_input_shape(spec, model, input_shape, resolution))
            try:
                default: tuple[int, ...] = resolve_input_shape(spec, model)
            except RexbenchError:
                if not given + extra:
                    raise
                default = (given + extra)[0]  # no default: the input it is measured at
            macs: dict[tuple[int, ...], int] = {}
            for chw in dict.fromkeys([default, *given, *extra]):
                counts = count_model(model, (1, *chw), counters=("conv",))
                macs[chw] = counts.macs_conv
            for chw in optional:
                if chw not in macs:
                    with contextlib.suppress(Exception):  # an input this model cannot take
                        macs[chw] = count_model(model, (1, *chw), counters=("conv",)).macs_conv
        params = {"params_total": counts.params_total, "params_trainable": counts.params_trainable}
        return default, params, macs

    try:
        return run("meta")
    except RexbenchError:
        raise
    except Exception:  # an op without a meta kernel, .item() in a forward: count for real
        try:
            return run("cpu")
        except RexbenchError:
            raise
        except Exception as exc:
            raise RexbenchError(f"could not count {spec}: {first_line(exc)}") from exc


def entry_shapes(entry: Mapping[str, Any]) -> list[tuple[int, int, int]]:
    """The inputs a counts entry holds (its own `resolution` / `input_shape` first, then every
    `macs_conv@K`), to count now at the same ones (a model without a default input needs them)."""
    from rexbench.models.shapes import parse_input_shape

    own = entry.get("input_shape") or entry.get("resolution")
    keys = {k.partition("@")[2] for k in entry if "@" in k}
    shapes = [parse_input_shape(str(own))] if own else []
    return shapes + [parse_input_shape(k) for k in sorted(keys)]


def count_entries(
    specs: Sequence[ModelSpec],
    extra_shapes: Mapping[str, Iterable[Sequence[int]]] | None = None,
    progress: Callable[[str], None] | None = None,
    input_shape: str | Sequence[int] | None = None,
    resolution: int | None = None,
) -> dict[str, dict[str, Any]]:
    """{canonical spec: counts entry} for every spec, in order (input_shape, resolution: see
    count_entry)."""
    out = {}
    for spec in specs:
        if progress is not None:
            progress(str(spec))
        out[str(spec)] = count_entry(
            spec, (extra_shapes or {}).get(str(spec), ()), input_shape, resolution
        )
    return out


# ------------------------------------------------------------------------------ reference records


def save_records(records: Sequence[Record], root: str | Path) -> list[Path]:
    """Write records as baselines under root/<machine-id>/ (replacing the same model x config)."""
    from rexbench.records.store import write_record

    for record in records:
        if record.timing is None or not record.timing.samples_ns:
            raise RexbenchError(
                f"{record.model.spec} ({record.run.label}) has no timing samples: it cannot be a latency baseline"
            )
    return [write_record(record, root) for record in records]


def load_baselines(root: str | Path) -> list[Record]:
    """Every reference record under `root` (all machines); counts.json is not a record.

    A missing folder gives []; a damaged or old-schema file raises one line naming it.
    """
    from rexbench.records.store import load_records

    root = Path(root)
    if not root.exists():
        return []
    if not root.is_dir():
        raise RexbenchError(
            f"baseline {root} is not a folder; pass the baselines folder with --baseline"
        )
    return load_records(root)


def match_baseline(current: Record, baselines: Sequence[Record]) -> tuple[Record | None, bool]:
    """The baseline of `current`'s (spec, config_id): (record, same machine). This machine's
    record is preferred; else the newest record of another machine (then not comparable)."""
    same_key = [b for b in baselines if b.key == current.key]
    mine = [b for b in same_key if b.machine_id == current.machine_id]
    if mine:
        return max(mine, key=lambda r: r.created), True
    if same_key:
        return max(same_key, key=lambda r: r.created), False
    return None, False


def baselines_of(
    spec: str, baselines: Sequence[Record], machine_id: str
) -> tuple[list[Record], list[Record]]:
    """(this machine's baseline records of `spec`, other machines' ones), newest first per config."""
    mine = [b for b in baselines if b.model.spec == spec and b.machine_id == machine_id]
    others = [b for b in baselines if b.model.spec == spec and b.machine_id != machine_id]
    return sorted(mine, key=lambda r: r.created, reverse=True), others
