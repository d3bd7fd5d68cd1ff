"""ONNX Runtime and OpenVINO as run configurations (`--config ort`, `--config openvino`).

The model is exported to ONNX (ONNX Runtime) or converted from the module (OpenVINO) once, the
session / compiled model is built with the run's threads and precision, and the runner calls it on
the prepared input: `PreparedModel.run()` is one inference, timed by rexbench's own loop like every
PyTorch configuration. What was done (runtime and version, exporter and opset, graph optimisation
level, hints, the precision the runtime reports, setup times) goes into the record's preparation.

Each runtime is an optional extra (`rexbench[ort]`, `rexbench[openvino]`), imported here and only
when a configuration uses it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from rexbench.errors import RexbenchError

#: runtime -> (module to import, extra to install, name in messages)
EXTRAS = {
    "ort": ("onnxruntime", "rexbench[ort]", "ONNX Runtime"),
    "openvino": ("openvino", "rexbench[openvino]", "OpenVINO"),
}
#: The opset of the TorchScript-based exporter: the newest it supports fully on torch >= 2.1.
ONNX_OPSET = 17
#: Tried in this order: the TorchScript-based exporter (what most deployments still use), then
#: torch.export-based ("dynamo") one, which torch makes the default from 2.9 on.
EXPORTERS = ("legacy", "dynamo")
_OV_PRECISION = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}


def check_available(runtime: str | None) -> None:
    """One line naming the extra when a runtime's package is not installed (without importing it)."""
    if runtime is None:
        return
    module, extra, name = EXTRAS[runtime]
    if importlib.util.find_spec(module) is None:
        raise RexbenchError(
            f"--config {runtime} needs {name}, which is not installed: pip install '{extra}'"
        )


def require(runtime: str) -> Any:
    """The runtime's module, imported now (one line naming the extra when it is missing)."""
    check_available(runtime)
    module, extra, name = EXTRAS[runtime]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RexbenchError(f"{name} could not be imported ({exc}); reinstall '{extra}'") from None


def version(runtime: str) -> str:
    """The installed version of a runtime's package."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    for dist in ("onnxruntime", "onnxruntime-gpu") if runtime == "ort" else ("openvino",):
        with contextlib.suppress(PackageNotFoundError):
            return dist_version(dist)
    return "unknown"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Exporters and converters print progress, graphs and deprecation notices: keep them off the
    console (their errors still reach the caller)."""
    sink = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        _native_output_silenced(),
    ):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _native_output_silenced() -> Iterator[None]:
    """File descriptors 1 and 2 pointed at /dev/null for the duration (native code such as the
    TorchScript exporter prints its graph dumps there, past Python's sys.stdout and sys.stderr);
    restored afterwards."""
    import os
    import sys

    saved: dict[int, int] = {}
    try:
        for fd, stream in ((1, sys.__stdout__), (2, sys.__stderr__)):
            if stream is not None:
                stream.flush()
            saved[fd] = os.dup(fd)
    except (OSError, ValueError):  # no real descriptors (a closed stream): leave them alone
        for copy in saved.values():
            os.close(copy)
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            for fd in saved:
                os.dup2(null.fileno(), fd)
        yield
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


def _first_line(exc: BaseException, limit: int = 240) -> str:
    """`Type: first line` of the innermost cause (where exporters name the operator), without
    terminal colour codes, at most `limit` characters."""
    import re

    while exc.__cause__ is not None and str(exc.__cause__).strip():
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    first = text.splitlines()[0] if text else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


# ---------------------------------------------------------------------------------- ONNX export


def export_onnx(module: Any, example: Any) -> tuple[bytes, dict[str, Any]]:
    """The module as a serialised ONNX model: the TorchScript-based exporter at ONNX_OPSET, else
    the torch.export-based one. Returns (bytes, {exporter, opset, export_s, failed}); RexbenchError
    with each exporter's first error line when none works."""
    failed: list[str] = []
    for exporter in EXPORTERS:
        try:
            with _quiet():
                (blob, opset), seconds = _timed(lambda e=exporter: _export(module, example, e))
        except (
            Exception
        ) as exc:  # an operator without an ONNX translation, an untraceable forward...
            failed.append(f"{exporter} exporter: {_first_line(exc)}")
            continue
        return blob, {"exporter": exporter, "opset": opset, "export_s": seconds, "failed": failed}
    raise RexbenchError("ONNX export failed: " + "; ".join(failed))


def _export(module: Any, example: Any, exporter: str) -> tuple[bytes, int | None]:
    import torch

    if exporter == "legacy":
        buffer = io.BytesIO()
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input"], output_names=["output"])  # fmt: skip
        return buffer.getvalue(), ONNX_OPSET
    program = torch.onnx.export(module, (example,), dynamo=True, verbose=False)
    proto = program.model_proto
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return proto.SerializeToString(), opset


# ---------------------------------------------------------------------------------- ONNX Runtime


class OrtRunner:
    """One ONNX Runtime inference on a host array: `InferenceSession.run`, as an application calls
    it (the input array is wrapped, not copied; the output array is returned)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_names = [session.get_outputs()[0].name]

    def __call__(self, x: Any) -> Any:
        return self.session.run(self.output_names, {self.input_name: x})[0]


class OrtCudaRunner:
    """One ONNX Runtime inference with input and output bound on the GPU (IOBinding), so that no
    host-device copy is timed, as with a PyTorch model whose input is already on the device."""

    def __init__(self, session: Any, device_id: int) -> None:
        self.session = session
        self.device_id = device_id
        self.output_name = session.get_outputs()[0].name

    def __call__(self, x: Any) -> Any:
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.session.get_inputs()[0].name, x)
        binding.bind_output(self.output_name, "cuda", self.device_id)
        self.session.run_with_iobinding(binding)
        return binding.get_outputs()[0]


def ort_session(blob: bytes, device: str, threads: int) -> tuple[Any, dict[str, Any]]:
    """An InferenceSession with every graph optimisation, `threads` intra-op threads, sequential
    execution; the CUDA execution provider on cuda:N (refused when onnxruntime-gpu is missing or
    the session fell back to the CPU)."""
    ort = require("ort")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    provider: Any = "CPUExecutionProvider"
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RexbenchError(
                "--config ort --device cuda needs onnxruntime-gpu (pip install onnxruntime-gpu "
                "in place of onnxruntime)"
            )
        provider = ("CUDAExecutionProvider", {"device_id": int(device.partition(":")[2] or 0)})
    session = ort.InferenceSession(blob, sess_options=options, providers=[provider])
    used = session.get_providers()[0]
    if device.startswith("cuda") and used != "CUDAExecutionProvider":
        raise RexbenchError(f"ONNX Runtime could not use the GPU (it fell back to {used})")
    info = {
        "provider": used,
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "intra_op_threads": threads,
        "inter_op_threads": 1,
        "execution_mode": "ORT_SEQUENTIAL",
        "intra_op_allow_spinning": "ONNX Runtime's default (on)",
    }
    return session, info


def prepare_ort(module: Any, x: Any, device: str, threads: int) -> tuple[Any, Any, dict[str, Any]]:
    """(runner, runner input, info): `module` (eval, on its device and dtype) exported with the
    example input `x` and loaded into an ONNX Runtime session."""
    import torch

    with torch.inference_mode(False), torch.no_grad():
        blob, info = export_onnx(module, x)
    (session, options), session_s = _timed(lambda: ort_session(blob, device, threads))
    info.update(options, session_s=session_s, onnx_bytes=len(blob))
    if device.startswith("cuda"):
        ort = require("ort")
        index = int(device.partition(":")[2] or 0)
        array = x.detach().cpu().numpy()
        value = ort.OrtValue.ortvalue_from_numpy(array, "cuda", index)
        return OrtCudaRunner(session, index), value, info
    return OrtRunner(session), x.detach().cpu().numpy(), info


# -------------------------------------------------------------------------------------- OpenVINO


class OpenVinoRunner:
    """One OpenVINO inference on a host array through one reused InferRequest (the input shared,
    not copied; the output tensor's array returned)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def __call__(self, x: Any) -> Any:
        self.request.infer([x], share_inputs=True, share_outputs=True)
        return self.request.get_output_tensor(0).data


def openvino_hints(dtype: str, threads: int) -> dict[str, Any]:
    """The CPU plugin's properties: LATENCY, `threads` inference threads, the run's precision (f32
    asked for explicitly: the plugin's default on CPUs with AMX or AVX-512 BF16 is bf16)."""
    return {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": _OV_PRECISION[dtype],
    }


def prepare_openvino(
    module: Any, x: Any, dtype: str, threads: int
) -> tuple[Any, Any, dict[str, Any]]:
    """(runner, runner input, info): `module` (eval, fp32, on the CPU) converted with
    `openvino.convert_model` and compiled for the CPU with `openvino_hints`. RexbenchError when the
    plugin reports another inference precision than the run's dtype (f16 becomes bf16 on CPUs
    without fp16 arithmetic)."""
    import torch

    ov = require("openvino")
    with _quiet(), torch.inference_mode(False), torch.no_grad():
        ov_model, convert_s = _timed(lambda: ov.convert_model(module, example_input=x))
    hints = openvino_hints(dtype, threads)
    core = ov.Core()
    compiled, compile_s = _timed(lambda: core.compile_model(ov_model, "CPU", hints))
    got = compiled.get_property("INFERENCE_PRECISION_HINT")
    effective = {name: getattr(ov.Type, name) for name in _OV_PRECISION.values()}
    if got != effective[hints["INFERENCE_PRECISION_HINT"]]:
        raise RexbenchError(
            f"OpenVINO runs {got.get_type_name()} where --dtype {dtype} asked for "
            f"{hints['INFERENCE_PRECISION_HINT']} (this CPU has no native {dtype} arithmetic)"
        )
    reported = {key: str(compiled.get_property(key)) for key in
                ("PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS")}  # fmt: skip
    info = {
        "converter": "openvino.convert_model (from the torch module)",
        "device": "CPU",
        "device_name": str(core.get_property("CPU", "FULL_DEVICE_NAME")),
        "hints": hints,
        "compiled": {**reported, "INFERENCE_PRECISION_HINT": got.get_type_name()},
        "convert_s": convert_s,
        "compile_s": compile_s,
    }
    return OpenVinoRunner(compiled), x.detach().cpu().numpy(), info


# ----------------------------------------------------------------------------------------- both


def prepare_runtime(
    runtime: str, module: Any, x: Any, *, dtype: str, device: str, threads: int
) -> tuple[Any, Any, dict[str, Any]]:
    """(runner, runner input, info) of one runtime; `info` starts with its name and version.
    `module` and `x` are on the device and in the dtype the runtime takes them (prepare_runner)."""
    if runtime == "ort":
        if dtype == "bf16":
            raise RexbenchError(
                "ONNX Runtime has no bf16 input from NumPy: use --dtype fp32 or fp16"
            )
        runner, value, info = prepare_ort(module, x, device, threads)
    else:
        runner, value, info = prepare_openvino(module, x, dtype, threads)
    _, name = EXTRAS[runtime][0], EXTRAS[runtime][2]
    return runner, value, {"name": name, "version": version(runtime), "precision": dtype, **info}


def prepare_with_runtime(
    model: Any, config: Any, default_resolution: int, input_shape: Any = None
) -> Any:
    """`rexbench.measure.backends.prepare.prepare` for a runtime configuration: a deep copy of `model`
    handed to the runtime, and the first call timed. compile_s is the whole setup (export or
    conversion, session or compilation, first call), the parts are in the runtime info."""
    import copy
    from dataclasses import replace

    import torch

    from rexbench.measure.backends.prepare import PreparedModel, make_input, torch_dtype

    module = copy.deepcopy(model).eval()
    # ONNX Runtime runs the exported graph in its dtype; OpenVINO takes the fp32 graph and the
    # precision as a hint.
    on = config if config.runtime == "ort" else replace(config, dtype="fp32")
    module = module.to(device=on.device, dtype=torch_dtype(on.dtype))
    x = make_input(on, default_resolution, input_shape=input_shape)
    start = time.perf_counter()
    runner, value, info = prepare_runtime(
        config.runtime, module, x, dtype=config.dtype, device=config.device,
        threads=torch.get_num_threads(),
    )  # fmt: skip
    info["setup_s"] = time.perf_counter() - start
    prepared = PreparedModel(module=runner, input=value, config=config, device=config.device,
                             resolution=int(x.shape[-2]), runtime=info)  # fmt: skip
    _, first = _timed(prepared.run)
    info["first_call_s"] = first
    prepared.compile_s = info["setup_s"] + first
    return prepared
