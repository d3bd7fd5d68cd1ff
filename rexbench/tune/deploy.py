"""How to run the winner outside rexbench: a runnable Python file with the exact preparation (the
torch.compile call, the ONNX Runtime SessionOptions, the OpenVINO compile config), its threads and
its allocator's environment variables, and a plain timing loop that prints the median as one JSON
line (rexbench.tune.verify runs it and compares).

The environment is set by the file itself: it restarts itself once with the variables a worker of
that allocator starts with (rexbench.measure.machine.allocators), since an allocator and the thread
pools are chosen before Python starts. The model comes from `rexbench.create_model`; a backend or
option this module has no plain form for (a backend registered later) is prepared by rexbench's own
`prepare`, as the comment in the file says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rexbench.measure.backends.openvino import openvino_hints
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.machine import allocators
from rexbench.measure.machine.allocator import ENV_VARS as STEADY_ENV
from rexbench.tune.space import Candidate

DEFAULT_RUNS = 200
WARMUP = 20
_TORCH_DTYPE = {"fp32": None, "fp16": "torch.float16", "bf16": "torch.bfloat16"}


@dataclass(frozen=True)
class Deployment:
    """What the file needs: the model, its weights, the winner, its input shape (C, H, W), the
    ONNX exporter rexbench used for it ("legacy" or "dynamo", from its record)."""

    spec: str
    weights: str | None
    candidate: Candidate
    shape: Sequence[int]
    exporter: str = "legacy"


def environment(candidate: Candidate) -> tuple[dict[str, str], list[str]]:
    """(variables to set, variables to remove) for the winner's allocator and threads."""
    _, set_here = allocators.worker_environment(candidate.allocator, candidate.config.threads)
    unset = list(STEADY_ENV) if candidate.allocator == "system" else []
    return dict(set_here), unset


def snippet(d: Deployment) -> str:
    """The file's text."""
    c = d.candidate.config
    env, unset = environment(d.candidate)
    weights = f", weights={d.weights!r}" if d.weights else ""
    head = _HEAD.format(
        spec=d.spec,
        what=f"{c.label}, {c.threads} thread(s), the {d.candidate.allocator} allocator, batch {c.batch_size}",
        env=_literal(env),
        unset=_literal(unset),
        threads=c.threads,
        batch=c.batch_size,
        shape=tuple(d.shape),
        runs=DEFAULT_RUNS,
        warmup=WARMUP,
        weights=weights,
    )
    return head + preparation(d) + _LOOP


def preparation(d: Deployment) -> str:
    """The lines that prepare `model` and `x` and define `run()`: the runtime's own API where
    the configuration has a plain form, else rexbench's `prepare`."""
    c = d.candidate.config
    backend = BACKENDS.get(c.runtime)
    if c.options or backend.name not in ("torch", "ort", "openvino"):
        return _rexbench_prepare(d)
    if backend.name == "torch":
        return _torch(d)
    if backend.name == "ort":
        return _ort(d)
    return _openvino(d)


def _torch(d: Deployment) -> str:
    c = d.candidate.config
    lines = ["# PyTorch: the preparation rexbench measured, in its order"]
    if c.fold_bn:
        lines += [
            "from torch.fx.experimental.optimization import fuse",
            "",
            "model = fuse(model)  # BatchNorm folded into the convolutions",
        ]
    if (dtype := _TORCH_DTYPE[c.dtype]) is not None:
        lines += [f"model, x = model.to(dtype={dtype}), x.to(dtype={dtype})"]
    if c.channels_last:
        lines += [
            "model = model.to(memory_format=torch.channels_last)",
            "x = x.contiguous(memory_format=torch.channels_last)",
        ]
    if c.compile:
        if c.freezing:
            lines += ["torch._inductor.config.freezing = True  # weights as constants"]
        mode = "" if c.compile_mode == "default" else f"mode={c.compile_mode!r}, "
        lines += [f"model = torch.compile(model, {mode}dynamic=False)"]
    lines += ["", "def run():", "    return model(x)", ""]
    return "\n".join(lines) + "\n"


def _ort(d: Deployment) -> str:
    c = d.candidate.config
    half = "model, x = model.half(), x.half()\n" if c.dtype == "fp16" else ""
    export = (
        "    blob = torch.onnx.export(model, (x,), dynamo=True).model_proto.SerializeToString()\n"
        if d.exporter == "dynamo"
        else "    buffer = io.BytesIO()\n"
        "    torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17,\n"
        '                      input_names=["input"], output_names=["output"])\n'
        "    blob = buffer.getvalue()\n"
    )
    return _ORT.format(half=half, export=export)


def _openvino(d: Deployment) -> str:
    c = d.candidate.config
    hints = openvino_hints(c.dtype, int(c.threads or 1))
    body = ",\n".join(
        f"    {k!r}: {'THREADS' if k == 'INFERENCE_NUM_THREADS' else repr(v)}"
        for k, v in hints.items()
    )
    return _OPENVINO.format(hints="{\n" + body + ",\n}")


def _rexbench_prepare(d: Deployment) -> str:
    c = d.candidate.config
    title = BACKENDS.get(c.runtime).title
    config = {k: v for k, v in c.to_dict().items() if k not in ("runs", "warmup")}
    return _GENERIC.format(title=title, config=_literal(config))


def _literal(value: Any) -> str:
    import pprint

    return pprint.pformat(value, width=96, sort_dicts=False)


_HEAD = '''\
"""{spec} as `rexbench tune` recommends for this machine: {what}.

Run it with `python THIS_FILE [RUNS]` (from the folder tune ran in, for a py: model). It restarts
itself once with the environment below (an allocator and the thread pools are set up before Python
starts), prepares the model with the runtime's own API, times RUNS calls (default {runs}) after
{warmup} warm-up calls and prints one JSON line with the median.
"""

import json
import os
import statistics
import sys
import time

ENV = {env}
UNSET = {unset}

if os.environ.get("REXBENCH_SNIPPET_ENV") != "1":
    env = {{k: v for k, v in os.environ.items() if k not in UNSET}}
    env.update(ENV, REXBENCH_SNIPPET_ENV="1")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import torch  # noqa: E402

import rexbench  # noqa: E402

THREADS = {threads}
BATCH = {batch}
SHAPE = {shape}
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else {runs}
WARMUP = {warmup}

torch.set_num_threads(THREADS)
model = rexbench.create_model({spec!r}{weights}).eval()
x = torch.randn(BATCH, *SHAPE, generator=torch.Generator().manual_seed(0))

'''

_ORT = """\
# ONNX Runtime: the model exported to ONNX, every graph optimisation, THREADS intra-op threads
import io  # noqa: E402

import onnxruntime as ort  # noqa: E402

{half}with torch.no_grad():
{export}options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
options.intra_op_num_threads = THREADS
options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
options.add_session_config_entry("session.force_spinning_stop", "1")
session = ort.InferenceSession(blob, sess_options=options, providers=["CPUExecutionProvider"])
feed = {{session.get_inputs()[0].name: x.numpy()}}


def run():
    return session.run(None, feed)

"""

_OPENVINO = """\
# OpenVINO: the module converted, compiled for the CPU with these properties
import openvino as ov  # noqa: E402

with torch.no_grad():
    ov_model = ov.convert_model(model, example_input=x)
compiled = ov.Core().compile_model(ov_model, "CPU", {hints})
request = compiled.create_infer_request()
array = x.numpy()


def run():
    return request.infer([array], share_inputs=True, share_outputs=True)

"""

_GENERIC = """\
# {title} as rexbench prepares it: this configuration has no plainer form here (its code is in
# rexbench/measure/backends)
from rexbench.measure.backends.prepare import prepare  # noqa: E402
from rexbench.measure.config import RunConfig  # noqa: E402

CONFIG = {config}
prepared = prepare(model, RunConfig.from_dict(CONFIG), input_shape=SHAPE, in_place=True)
run = prepared.run

"""

_LOOP = """
with torch.inference_mode():
    for _ in range(WARMUP):
        run()
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter_ns()
        run()
        samples.append(time.perf_counter_ns() - start)
print(json.dumps({"median_ms": statistics.median(samples) / 1e6, "runs": RUNS, "threads": THREADS}))
"""
