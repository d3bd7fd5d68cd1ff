"""A worker process: one configuration of one model, timed on its parent's commands.

rexbench.measure.run.workers starts it with its threads and allocator already in its environment,
and hands it the two ends of its pipe pair (rexbench.measure.run.channel); `python -m
rexbench.measure.run.worker COMMANDS_FD REPLIES_FD` runs it by hand. Once its imports are done it
says so ({"ok": true, "pid"}); then each command, one JSON object per line, gets one answer:

- setup {spec, config, input_shape, threads, weights, allocator}: build the model, give it weights
  a parity check can see through, take the eager fp32 output, prepare the configuration (in place:
  nothing needs the built model afterwards) and check its output, as rexbench.measure.run.profile
  does in one process -> {"ok": true, what the record keeps} or {"ok": false, "error": one line,
  "fatal": whether the whole run stops (out of memory)};
- warmup {n}: n timed calls, the peak memory over them and the heap before them;
- chunk {n}: n timed calls, their samples;
- logits {inputs, out}: the prepared configuration's outputs on the inputs in the .npy file
  `inputs`, written to the .npy file `out` (rexbench.measure.checks.logits; fidelity on real
  photographs) -> {"ok": true, "rows"} or {"ok": false, "error": one line}.

Between commands it blocks on its pipe, its runtime's threads idle. The end of the command pipe
ends it. Ctrl-C is ignored here (the parent stops its workers); a crash writes the Python stack to
the worker's log (faulthandler), which the parent quotes.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError, first_line
from rexbench.measure.run.channel import Channel

if TYPE_CHECKING:
    from rexbench.measure.backends.base import PreparedModel
    from rexbench.measure.config import RunConfig
    from rexbench.measure.timing.devices import DeviceOps


class Timed:
    """The prepared configuration, timed on command. glibc: whether glibc's malloc is the
    allocator (its heap is then read before the warm-up, as in one process)."""

    def __init__(self, prepared: PreparedModel, ops: DeviceOps, config: RunConfig, glibc: bool):
        from rexbench.measure.timing.l2flush import make_flusher

        self.prepared, self.ops, self.compiled, self.glibc = prepared, ops, config.compile, glibc
        self.before = make_flusher(prepared.device) if config.flush_l2 else None

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        from rexbench.measure.machine.allocator import heap_state
        from rexbench.measure.machine.processes import wait_idle

        n, reply = int(request["n"]), dict[str, Any]()
        if request["op"] == "warmup":
            reply["heap"] = heap_state() if self.glibc else None
            self.ops.begin_memory()
            reply["samples"] = self.time(n)
            reply["peak_memory"] = self.ops.end_memory()
        elif request["op"] == "chunk":
            reply["samples"] = self.time(n)
        else:
            raise ValueError(f"unknown command {request['op']!r}")
        # its threads idle before the next chunk starts, whoever's it is (machine.processes)
        reply["idle_wait_s"], reply["idle"] = wait_idle()
        return {**reply, **self.graphs()}

    def time(self, n: int) -> list[int]:
        from rexbench.measure.timing.loop import time_calls

        return time_calls(self.prepared.run, n, self.ops, time.perf_counter_ns, self.before)

    def graphs(self) -> dict[str, Any]:
        """torch.compile's graphs so far (rexbench.measure.backends.cudagraphs.compile_counters)."""
        if not self.compiled:
            return {}
        from rexbench.measure.backends.cudagraphs import compile_counters

        return compile_counters()


def allocator_info(policy: str) -> dict[str, Any]:
    """What a record says of the allocator this process runs under."""
    if policy == "steady":
        from rexbench.measure.machine.allocator import steady_allocator

        return dict(steady_allocator())  # the environment set it already; this says what it is
    if policy == "system":
        name, version = platform.libc_ver()
        return {"policy": "system", "library": f"{name} {version}".strip() or "unknown"}
    library = os.environ.get("LD_PRELOAD", "").split()[0]
    try:
        loaded = library in Path("/proc/self/maps").read_text()
    except OSError:
        loaded = None
    return {"policy": policy, "library": library, "loaded": loaded}


def _prepared(request: dict[str, Any], config: RunConfig) -> tuple[PreparedModel, dict[str, Any]]:
    """Build, prepare and check, as rexbench.measure.run.profile does for one configuration."""
    from rexbench.measure.checks import parity
    from rexbench.measure.run import calibrated
    from rexbench.measure.run.parts import REAL
    from rexbench.measure.run.profile import check_output, prepare_config
    from rexbench.measure.timing.devices import device_ops
    from rexbench.spec import parse

    spec, shape, weights = parse(request["spec"]), tuple(request["input_shape"]), request["weights"]
    model = parity.seeded_model(spec, weights)
    if weights is None:
        described = parity.nontrivial_weights(model)
    else:
        described = f"the checkpoint {Path(weights).name}"
    try:
        reference: Any = REAL.reference_output(model, config, shape)
    except Exception as exc:  # raised by the check, as in one process
        reference = exc
    photos = calibrated.references(model, [config], [shape], weights)
    prepared = prepare_config(
        REAL.prepare,
        model,
        config,
        shape,
        name=str(spec),
        in_place=True,
        calibration=calibrated.calibration(config, weights),
    )
    del model
    check = check_output(prepared, reference, described, device_ops(prepared.device))
    calibrated.add_fidelity(check, prepared, photos.get(shape), weights)
    return prepared, check


def setup(request: dict[str, Any], stack: contextlib.ExitStack) -> tuple[Timed | None, dict]:
    """The answer to `setup`, and the configuration to time (None when it could not be prepared).
    Its threads and backend settings stay in force for the rest of the process."""
    import torch

    from rexbench.measure.config import RunConfig
    from rexbench.measure.machine.env import thread_info
    from rexbench.measure.timing.devices import device_ops
    from rexbench.measure.timing.loop import backend_settings

    config = RunConfig.from_dict(request["config"])
    allocator = allocator_info(request["allocator"])
    settings = backend_settings(request["threads"], config.cudnn_benchmark, config.allow_tf32)
    backend = stack.enter_context(settings)
    try:
        prepared, check = _prepared(request, config)
    except RexbenchError as exc:
        return None, {"ok": False, "error": str(exc), "fatal": str(exc).startswith("out of memory")}
    except Exception as exc:
        error = f"{request['spec']} {config.label} failed in its worker: {first_line(exc)}"
        return None, {"ok": False, "error": error, "fatal": False}
    ops = device_ops(prepared.device)
    timed = Timed(prepared, ops, config, request["allocator"] in ("steady", "system"))
    stack.enter_context(ops.scope())
    stack.enter_context(torch.inference_mode())
    return timed, {
        "ok": True,
        "prepared": prepared.to_dict(),
        "notes": list(prepared.notes),
        "bn_remaining": prepared.bn_remaining,
        "compile_s": prepared.compile_s,
        "parity": check,
        "backend": backend,
        "threads": thread_info(),
        "allocator": allocator,
        **timed.graphs(),
    }


def logits(prepared: PreparedModel, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to `logits`: the outputs written to the file the request names, its threads
    idle afterwards, as after a chunk."""
    import numpy as np

    from rexbench.measure.checks.logits import prepared_logits
    from rexbench.measure.machine.processes import wait_idle
    from rexbench.measure.run.rounds import first_line

    try:
        out = prepared_logits(prepared, np.load(request["inputs"]))
        np.save(request["out"], out)
    except Exception as exc:
        return {"ok": False, "error": first_line(exc)}
    finally:
        wait_idle()
    return {"ok": True, "rows": len(out)}


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the parent's commands until its command pipe ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()
    args = list(sys.argv[1:] if argv is None else argv)
    channel = Channel(int(args[0]), int(args[1]))
    import torch  # noqa: F401  (the heavy import first, while the parent builds and counts)

    channel.send({"ok": True, "pid": os.getpid()})  # up: its --timeout counts from here

    timed: Timed | None = None
    with contextlib.ExitStack() as stack:
        while (request := channel.receive()) is not None:
            if request["op"] == "setup":
                timed, reply = setup(request, stack)
            elif timed is None:
                reply = {"ok": False, "error": "nothing prepared to time", "fatal": True}
            elif request["op"] == "logits":
                reply = logits(timed.prepared, request)
            else:
                reply = timed.answer(request)
            channel.send(reply)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
