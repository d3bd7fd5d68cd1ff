"""The search space of `rexbench tune`: every way of running the model that this machine offers.

Candidates are read from the backend registry (rexbench.measure.backends.registry), never named
here: every preset whose backend can run on the device (`available`), in each layout for backends
that take PyTorch's (channels-last or not), in each dtype its backend lists and the machine runs
natively, with each thread count (1, 2, 4 ... up to the usable cores, and that number), under each
memory allocator installed (rexbench.measure.machine.allocators), and for `--objective throughput`
at several batch sizes. A preset or backend registered later joins the search with no change here.

What cannot run here is skipped with its reason (a backend not installed, a dtype without native
kernels); an unknown value given to narrow an axis, or nothing left to search, is one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from rexbench.errors import RexbenchError
from rexbench.measure.backends.base import DTYPES
from rexbench.measure.backends.inputs import check_dtype
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.config import RunConfig
from rexbench.measure.machine import allocators

OBJECTIVES = ("latency", "throughput")
LAYOUTS = ("nhwc", "nchw")  # channels-last, or PyTorch's default contiguous layout
THROUGHPUT_BATCHES = (1, 4, 16)
#: compile modes that record CUDA graphs: on the CPU they compile as the default mode does
_GRAPH_MODES = ("reduce-overhead",)
_SAME_ON_CPU = (
    "its torch.compile mode records CUDA graphs; on the CPU it compiles as the default mode"
)


@dataclass(frozen=True)
class Candidate:
    """One way of running the model: a run configuration, and the allocator of its worker."""

    config: RunConfig
    allocator: str = allocators.DEFAULT

    @property
    def key(self) -> tuple[str, str]:
        """Unique in a search (the allocator is not part of a configuration's id)."""
        return self.config.config_id, self.allocator

    @property
    def kind(self) -> tuple[str, str]:
        """Candidates that prepare alike: (the label without its dtype, the dtype)."""
        return BACKENDS.label(self.config), self.config.dtype

    @property
    def numerics(self) -> str:
        """Candidates whose outputs are the same computation (threads and batch aside)."""
        return numerics_of(self.config)

    @property
    def name(self) -> str:
        """`max+bf16 t2 jemalloc`, with ` b16` at a batch size other than 1."""
        c = self.config
        batch = f" b{c.batch_size}" if c.batch_size != 1 else ""
        return f"{c.label} t{c.threads} {self.allocator}{batch}"


@dataclass(frozen=True)
class Skipped:
    """Something the search leaves out, and why (one line)."""

    what: str
    reason: str


@dataclass(frozen=True)
class Axes:
    """The axes to search, each None for "all that this machine offers". configs: `--config`
    names (presets, or NAME:KEY=VALUE); in_process: every candidate in this process (tests), so
    only the allocator this process has; cores: the most threads (None: usable_cores())."""

    configs: Sequence[str] | None = None
    threads: Sequence[int] | None = None
    dtypes: Sequence[str] | None = None
    layouts: Sequence[str] | None = None
    allocators: Sequence[str] | None = None
    batch_sizes: Sequence[int] | None = None
    objective: str = "latency"
    device: str = "cpu"
    in_process: bool = False
    cores: int | None = None  # None: this process's usable cores


@dataclass
class Space:
    """The candidates in the order they are screened, and what was left out."""

    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_counts(cores: int) -> list[int]:
    """1, 2, 4 ... below `cores`, and `cores` itself."""
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return [*counts, cores]


def search_space(axes: Axes) -> Space:
    """Every candidate of the axes, in screening order (rexbench.tune.space.screening_order);
    RexbenchError for an unknown value or an empty space."""
    space = Space()
    threads = _threads(axes.threads, axes.cores or usable_cores())
    dtypes = _choices("--dtype", axes.dtypes, DTYPES)
    layouts = _choices("--layout", axes.layouts, LAYOUTS)
    policies = _allocators(axes.allocators, axes.in_process)
    batches = _batches(axes.batch_sizes, axes.objective)
    unsupported: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for name in _presets(axes.configs):
        fields = BACKENDS.preset_fields(name)
        backend = BACKENDS.get(fields["runtime"])
        reason = backend.available(axes.device)
        if reason is not None:
            space.skipped.append(Skipped(name, reason))
            continue
        if fields["compile"] and fields["compile_mode"] in _GRAPH_MODES and axes.device == "cpu":
            space.skipped.append(Skipped(name, _SAME_ON_CPU))
            continue
        for config in _configs(fields, dtypes, layouts, axes.device, unsupported):
            for t in threads:
                for batch in batches:
                    for policy in policies:
                        candidate = Candidate(replace(config, threads=t, batch_size=batch), policy)
                        if candidate.key not in seen:
                            seen.add(candidate.key)
                            space.candidates.append(candidate)
    space.skipped += [Skipped(dtype, reason) for dtype, reason in unsupported.items()]
    if not space.candidates:
        why = "; ".join(f"{s.what}: {s.reason}" for s in space.skipped) or "nothing matched"
        raise RexbenchError(
            f"the search space is empty ({why}); widen --config, --dtype or --layout"
        )
    space.candidates = screening_order(space.candidates, max(threads))
    return space


def screening_order(candidates: Sequence[Candidate], threads: int) -> list[Candidate]:
    """The order in which the first rung screens them, so that a budget that ends it early leaves
    out the least likely: the fewest settings off their defaults first (steady allocator, all
    `threads`, fp32, the preset's own layout, the smallest batch), and among those one
    configuration of each backend in turn (registry order)."""
    backends = {name: i for i, name in enumerate(BACKENDS.names())}
    position: dict[str, int] = {}
    ranks = []
    for c in candidates:
        config = c.config
        backend = BACKENDS.get(config.runtime).name
        preset = BACKENDS.preset_of(config)
        off = (
            c.allocator != allocators.DEFAULT,
            config.threads != threads,
            config.dtype != "fp32",
            preset is None,
        )
        kind = (backend, config.label)
        position.setdefault(kind, sum(1 for k in position if k[0] == backend))
        ranks.append((sum(off), off, config.batch_size, position[kind], backends[backend]))
    order = sorted(range(len(candidates)), key=lambda i: (ranks[i], i))
    return [candidates[i] for i in order]


def _presets(names: Sequence[str] | None) -> list[str]:
    """`--config` values (comma-separated, checked against the registry), or every preset."""
    if names is None:
        return BACKENDS.presets()
    wanted = [n.strip() for text in names for n in text.split(",") if n.strip()]
    if not wanted:
        raise RexbenchError("--config needs a configuration name; see `rexbench profile --help`")
    for name in wanted:
        BACKENDS.preset_fields(name)  # an unknown name is one line with the closest ones
    return list(dict.fromkeys(wanted))


def _configs(
    fields: dict, dtypes: list[str], layouts: list[str], device: str, unsupported: dict[str, str]
) -> list[RunConfig]:
    """The preset in each layout (where its backend takes PyTorch's) and dtype it can run here;
    a dtype this machine cannot run goes into `unsupported` with its reason."""
    backend = BACKENDS.get(fields["runtime"])
    variants = [dict(fields)]
    if backend.torch_preparation:
        variants.append({**fields, "channels_last": not fields["channels_last"]})
    out = []
    for variant in variants:
        layout = "nhwc" if variant.get("channels_last") else "nchw"
        if backend.torch_preparation and layout not in layouts:
            continue
        for dtype in dtypes:
            if dtype not in backend.dtypes:
                continue
            try:
                check_dtype(device, dtype)
            except RexbenchError as exc:
                unsupported.setdefault(dtype, str(exc))
                continue
            config = RunConfig(**variant, device=device, dtype=dtype)
            if backend.refuses(config) is None:  # int8 presets quantize the fp32 model only
                out.append(config)
    return out


def _threads(given: Sequence[int] | None, cores: int) -> list[int]:
    if given is None:
        return thread_counts(cores)
    for t in given:
        if not 1 <= t <= cores:
            raise RexbenchError(
                f"--threads {t}: this machine has {cores} usable core(s); choose from 1 to {cores}"
            )
    return sorted(set(given))


def _choices(option: str, given: Sequence[str] | None, known: Sequence[str]) -> list[str]:
    if given is None:
        return list(known)
    values = [v.strip() for text in given for v in str(text).split(",") if v.strip()]
    for value in values:
        if value not in known:
            raise RexbenchError(f"{option} {value!r}: choose from {', '.join(known)}")
    if not values:
        raise RexbenchError(f"{option} needs a value: one of {', '.join(known)}")
    return list(dict.fromkeys(values))


def _allocators(given: Sequence[str] | None, in_process: bool) -> list[str]:
    """The policies asked for (each checked: known and installed), or every installed one. In
    this process (tests): only the one it has."""
    if in_process:
        if given is not None and set(_choices("--allocator", given, allocators.POLICIES)) != {
            allocators.DEFAULT
        }:
            raise RexbenchError(
                f"--allocator is set up in each worker process; in this process only "
                f"{allocators.DEFAULT} can be searched"
            )
        return [allocators.DEFAULT]
    if given is not None:
        chosen = _choices("--allocator", given, allocators.POLICIES)
        for policy in chosen:
            allocators.check_policy(policy)  # one line naming the package to install
        return chosen
    installed = []
    for policy in allocators.POLICIES:
        try:
            allocators.check_policy(policy)
        except RexbenchError:
            continue
        installed.append(policy)
    return installed


def _batches(given: Sequence[int] | None, objective: str) -> list[int]:
    if objective not in OBJECTIVES:
        raise RexbenchError(f"--objective {objective!r}: choose latency or throughput")
    if given is None:
        return list(THROUGHPUT_BATCHES if objective == "throughput" else (1,))
    for b in given:
        if b < 1:
            raise RexbenchError(f"--batch-size {b}: give a batch size of 1 or more")
    return sorted(set(given))


def numerics_of(config: RunConfig) -> str:
    """The id of what a configuration computes, its threads and batch size aside."""
    return replace(config, threads=None, batch_size=1).config_id
