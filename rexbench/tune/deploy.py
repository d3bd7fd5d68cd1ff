"""How to run the winner outside rexbench: a runnable Python file with the exact preparation (the
torch.compile call, the ONNX Runtime SessionOptions, the OpenVINO compile config, and for int8 the
quantizer's own call: ONNX Runtime's quantize_static, NNCF's quantize, PT2E's prepare_pt2e and
convert_pt2e), its threads and its allocator's environment variables, and a plain timing loop that
prints the median as one JSON line (rexbench.tune.verify runs it and compares).

The environment is set by the file itself: it restarts itself once with the variables a worker of
that allocator starts with (rexbench.measure.machine.allocators), since an allocator and the thread
pools are chosen before Python starts. The model comes from `rexbench.create_model`. An int8
configuration is calibrated on the inputs rexbench calibrates on (the calibration half of its
fidelity set, normalised as the weights expect, in batches of the run's size), which the file
says to replace with the user's own images. A backend or option this module has no plain form for
(a backend registered later) is prepared by rexbench's own `prepare`, as the comment in the file
says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rexbench.measure.backends.calibration import Calibration, image_resolution
from rexbench.measure.backends.openvino import openvino_hints
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.machine import allocators
from rexbench.measure.machine.allocator import ENV_VARS as STEADY_ENV
from rexbench.tune.space import Candidate

DEFAULT_RUNS = 200
WARMUP = 20
_TORCH_DTYPE = {"fp32": None, "fp16": "torch.float16", "bf16": "torch.bfloat16"}
INT8 = {"quantize": "int8"}  # the option of ort_int8 and openvino_int8


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
    name, options = BACKENDS.get(c.runtime).name, dict(c.options)
    if name == "torch" and not options:
        return _torch(d)
    if name == "ort" and options in ({}, INT8):
        return _ort(d)
    if name == "openvino" and options in ({}, INT8):
        return _openvino(d)
    if name == "pt2e" and not options:
        return _pt2e(d)
    return _rexbench_prepare(d)


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
        "    program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)\n"
        "    blob = program.model_proto.SerializeToString()\n"
        if d.exporter == "dynamo"
        else "    buffer = io.BytesIO()\n"
        "    torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17,\n"
        '                      input_names=["input"], output_names=["output"])\n'
        "    blob = buffer.getvalue()\n"
    )
    text = _ORT_EXPORT.format(half=half, export=export)
    if dict(c.options) == INT8:
        return _calibration(d) + text + _ORT_INT8 + _ORT_SESSION
    return text + _ORT_SESSION


def _openvino(d: Deployment) -> str:
    c = d.candidate.config
    hints = openvino_hints(c.dtype, int(c.threads or 1))
    body = ",\n".join(
        f"    {k!r}: {'THREADS' if k == 'INFERENCE_NUM_THREADS' else repr(v)}"
        for k, v in hints.items()
    )
    int8 = dict(c.options) == INT8
    text = _OPENVINO.format(hints="{\n" + body + ",\n}", quantize=_NNCF if int8 else "")
    return _calibration(d) + text if int8 else text


def _pt2e(d: Deployment) -> str:
    return _calibration(d) + _PT2E


def _calibration(d: Deployment) -> str:
    """The calibration batches of an int8 configuration: rexbench's own inputs, written out."""
    calibration = Calibration.for_weights(d.weights)
    return _CALIBRATION.format(
        resolution=image_resolution(d.shape), mean=calibration.mean, std=calibration.std
    )


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

_CALIBRATION = """\
# Calibration: rexbench's calibration photographs (the calibration half of its fidelity set, crops
# of the photographs scikit-image ships), at the input's resolution, normalised as the weights
# expect, BATCH at a time, the last batch filled up with the first photographs again. For your
# deployment put images of your own data here: an N x 3 x RESOLUTION x RESOLUTION float32 array,
# normalised with the mean and std the weights expect (of 0-1 RGB pixels).
import numpy as np  # noqa: E402

from rexbench.models.photos import fidelity_inputs  # noqa: E402

RESOLUTION = {resolution}
MEAN = {mean}
STD = {std}
inputs = fidelity_inputs(RESOLUTION, "calibration", MEAN, STD)
rows = -(-len(inputs) // BATCH) * BATCH  # whole batches of BATCH inputs
inputs = np.resize(inputs, (rows, *inputs.shape[1:]))  # the first inputs again at the end
batches = np.split(inputs, rows // BATCH)

"""

_ORT_EXPORT = """\
# ONNX Runtime: the model exported to ONNX, every graph optimisation, THREADS intra-op threads
import io  # noqa: E402

import onnxruntime as ort  # noqa: E402

{half}with torch.no_grad():
{export}"""

_ORT_INT8 = """\

# int8 as ONNX Runtime's CPU recipe: shape inference and graph optimisation, then static QDQ
# quantization, activations uint8 (MinMax ranges over the calibration batches), weights int8 per
# output channel
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import onnx  # noqa: E402
from onnxruntime.quantization import (  # noqa: E402
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: E402


class Batches(CalibrationDataReader):
    def __init__(self, name):
        self.feeds = iter([{name: batch} for batch in batches])

    def get_next(self):
        return next(self.feeds, None)


with tempfile.TemporaryDirectory() as folder:
    fp32, ready, int8 = (Path(folder) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
    fp32.write_bytes(blob)
    quant_pre_process(fp32, ready)
    quantize_static(
        ready,
        int8,
        Batches(onnx.load_from_string(blob).graph.input[0].name),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    blob = int8.read_bytes()

"""

_ORT_SESSION = """\
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
options.intra_op_num_threads = THREADS
options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
options.add_session_config_entry("session.force_spinning_stop", "1")
session = ort.InferenceSession(blob, sess_options=options, providers=["CPUExecutionProvider"])
feed = {session.get_inputs()[0].name: x.numpy()}


def run():
    return session.run(None, feed)

"""

_OPENVINO = """\
# OpenVINO: the module converted, compiled for the CPU with these properties
import openvino as ov  # noqa: E402

with torch.no_grad():
    ov_model = ov.convert_model(model, example_input=x)
{quantize}compiled = ov.Core().compile_model(ov_model, "CPU", {hints})
request = compiled.create_infer_request()
array = x.numpy()


def run():
    return request.infer([array], share_inputs=True, share_outputs=True)

"""

_NNCF = """\

# int8 by NNCF's post-training quantization with its defaults, on every calibration batch (its
# progress bars on stderr: stdout keeps the one JSON line)
import contextlib  # noqa: E402
import logging  # noqa: E402

import nncf  # noqa: E402

nncf.set_log_level(logging.ERROR)
with contextlib.redirect_stdout(sys.stderr):
    ov_model = nncf.quantize(ov_model, nncf.Dataset(batches), subset_size=len(batches))

"""

_PT2E = """\
# PyTorch int8 (PT2E): the model captured by torch.export, annotated by the X86InductorQuantizer
# with its default configuration, observed on the calibration batches and converted, then
# compiled by torch.compile with inductor's freezing (int8 convolutions of oneDNN)
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e  # noqa: E402
from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (  # noqa: E402
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
)

quantizer = X86InductorQuantizer()
quantizer.set_global(get_default_x86_inductor_quantization_config())
with torch.no_grad():
    observed = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    for batch in batches:
        observed(torch.from_numpy(batch))
    model = convert_pt2e(observed)
torch._inductor.config.freezing = True  # weights as constants
model = torch.compile(model, dynamic=False)


def run():
    return model(x)

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
# `rexbench tune` checks this file by running it with REXBENCH_PARTS=K: the timed calls are then
# made in K parts, each after a line on stdin, and rexbench times its own worker's calls of the
# same configuration in between, so that both see the machine alike. Run by hand: one loop.
PARTS = int(os.environ.get("REXBENCH_PARTS", "1"))

with torch.inference_mode():
    for _ in range(WARMUP):
        run()
    samples = []
    for part in range(PARTS):
        if PARTS > 1:
            print("ready", flush=True)
            sys.stdin.readline()
        while len(samples) < RUNS * (part + 1) // PARTS:
            start = time.perf_counter_ns()
            run()
            samples.append(time.perf_counter_ns() - start)
print(json.dumps({"median_ms": statistics.median(samples) / 1e6, "runs": RUNS, "threads": THREADS}))
"""
