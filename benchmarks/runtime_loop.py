"""(helper) The plain loop that benchmarks/worker_isolation.py compares `rexbench profile` with: one
model under one configuration in a fresh process, prepared as a user would and timed with a clock
around each call, nothing else.

The model is built with `rexbench.create_model`, given the seeded BatchNorm statistics rexbench gives
a model without a checkpoint (rexbench.measure.checks.parity.nontrivial_weights: the same function),
and prepared
* eager: the module itself, on an NCHW input;
* ort: exported with `torch.onnx.export(..., opset_version=17, dynamo=False)` and run by an
  `onnxruntime.InferenceSession` (every graph optimisation, `intra_op_num_threads` = threads, one
  inter-op thread), `session.run(None, {name: array})`: the settings docs/runtimes.md lists;
* openvino: `openvino.convert_model(module, example_input=x)` compiled for "CPU" with
  PERFORMANCE_HINT=LATENCY, INFERENCE_NUM_THREADS = threads, INFERENCE_PRECISION_HINT=f32, one
  reused `InferRequest.infer`;
* any other configuration (max, compile_cl, ...): rexbench's own `prepare` (BatchNorm folding and
  torch.compile have no simpler public form), its `run()` timed here.
Threads: `torch.set_num_threads` before anything is built. The allocator is what the environment
says (worker_isolation.py starts it under the policy it compares).

Prints one JSON line: samples (ns), median (ns), minor page faults per timed call.
Usage: python benchmarks/runtime_loop.py MODEL CONFIG --threads 2 --runs 200 --warmup 20 [-r 224]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

import rexbench
from rexbench.measure.checks.parity import nontrivial_weights


def seeded_input(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))


def ort_runner(model: torch.nn.Module, x: torch.Tensor, threads: int) -> Callable[[], Any]:
    import onnxruntime as ort

    blob = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (x,), blob, opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        blob.getvalue(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: session.run(None, feed)


def openvino_runner(model: torch.nn.Module, x: torch.Tensor, threads: int) -> Callable[[], Any]:
    import openvino as ov

    with torch.no_grad():
        converted = ov.convert_model(model, example_input=x)
    hints = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "f32",
    }
    compiled = ov.Core().compile_model(converted, "CPU", hints)
    request, array = compiled.create_infer_request(), x.numpy()
    return lambda: request.infer({0: array}, share_inputs=True)


def runner(spec: str, config: str, threads: int, resolution: int | None) -> Callable[[], Any]:
    """One call of `spec` prepared as `config` (see the module's docstring)."""
    from rexbench.measure.backends.prepare import prepare
    from rexbench.measure.config import RunConfig
    from rexbench.models.shapes import resolve_input_shape
    from rexbench.spec import parse

    model = rexbench.create_model(spec).eval()
    nontrivial_weights(model)
    shape = resolve_input_shape(parse(spec), model, None, resolution)
    x = seeded_input(shape)
    if config == "eager":
        return lambda: model(x)
    if config == "ort":
        return ort_runner(model, x, threads)
    if config == "openvino":
        return openvino_runner(model, x, threads)
    preset = RunConfig.preset(config, threads=threads, resolution=resolution)
    prepared = prepare(model, preset, input_shape=shape, in_place=True)
    return prepared.run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("config")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("-r", "--resolution", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    call = runner(args.model, args.config, args.threads, args.resolution)
    samples = []
    with torch.inference_mode():
        for _ in range(args.warmup):
            call()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(args.runs):
            start = time.perf_counter_ns()
            call()
            samples.append(time.perf_counter_ns() - start)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    median = statistics.median(samples)
    print(json.dumps({"samples": samples, "median": median, "faults_per_call": faults / args.runs}))


if __name__ == "__main__":
    main()
