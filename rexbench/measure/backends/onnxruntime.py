"""ONNX Runtime as a backend (`--config ort`): the model exported to ONNX (onnx_export.py) and run
by an InferenceSession with every graph optimisation, the run's threads and sequential execution;
the CUDA execution provider on cuda:N (onnxruntime-gpu). One inference is `InferenceSession.run` on a
host array, as an application calls it; on CUDA the input and output are bound on the GPU with
IOBinding, so that no host-device copy is timed. `--config ort_int8` (option quantize=int8) runs
the export quantized to int8 on the CPU (ort_quantize.py). An optional extra, `rexbench[ort]`,
imported only when a configuration uses it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends import artifacts
from rexbench.measure.backends.base import Option, Preset, fp32_array, timed
from rexbench.measure.backends.engine import Engine, EngineBackend, host_array
from rexbench.measure.backends.onnx_export import export_onnx
from rexbench.measure.backends.ort_quantize import quantize

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.backends.calibration import Calibration
    from rexbench.measure.config import RunConfig

QUANTIZE = ("none", "int8")
GRAPH = "model.onnx"  # the graph's file in the cache of built graphs

#: ONNX Runtime's session option: the intra-op threads stop spinning when a run returns
FORCE_SPINNING_STOP = "session.force_spinning_stop"
_NO_GPU = "--config ort --device cuda needs onnxruntime-gpu (pip install onnxruntime-gpu in place of onnxruntime)"


class OnnxRuntimeBackend(EngineBackend):
    """The exported graph in the run's dtype (fp32 or fp16: NumPy has no bfloat16 to feed it), or
    quantized to int8 from fp32."""

    name = "ort"
    title = "ONNX Runtime"
    module = "onnxruntime"
    extra = "rexbench[ort]"
    distributions = ("onnxruntime", "onnxruntime-gpu")
    dtypes = ("fp32", "fp16")
    options = {
        "quantize": Option("none", "int8: static QDQ quantization (ort_quantize.py)", QUANTIZE)
    }

    def presets(self) -> Sequence[Preset]:
        return (
            Preset(self.name, self.title),
            Preset("ort_int8", "int8, static QDQ", {"options": {"quantize": "int8"}}),
        )

    def calibrates(self, config: RunConfig) -> bool:
        return dict(config.options).get("quantize") == "int8"

    def check(self, config: RunConfig) -> None:
        super().check(config)
        if self.calibrates(config) and config.device != "cpu":
            raise RexbenchError("--config ort_int8 runs on the CPU: use --device cpu")

    def refuses(self, config: RunConfig) -> str | None:
        if self.calibrates(config) and config.dtype != "fp32":
            return "--config ort_int8 quantizes the fp32 model: it takes --dtype fp32 only"
        return super().refuses(config)

    def available(self, device: str) -> str | None:
        reason = super().available(device)
        if reason is not None or not device.startswith("cuda"):
            return reason
        return None if "CUDAExecutionProvider" in self.load().get_available_providers() else _NO_GPU

    def build(
        self,
        module: nn.Module,
        x: Any,
        config: RunConfig,
        threads: int,
        *,
        calibration: Calibration | None = None,
    ) -> Engine:
        blob, info = self.graph(module, x, config, calibration)
        (session, options), session_s = timed(lambda: self.session(blob, config.device, threads))
        info.update(options, session_s=session_s, onnx_bytes=len(blob))
        array = x.detach().cpu().numpy()
        if not config.device.startswith("cuda"):
            return Engine(OrtRunner(session), array, info)
        index = int(config.device.partition(":")[2] or 0)
        to_gpu = functools.partial(_on_gpu, self.load().OrtValue, index, array.dtype)
        return Engine(OrtCudaRunner(session, index), to_gpu(array), info, _ortvalue_fp32, to_gpu)

    def graph(
        self, module: nn.Module, x: Any, config: RunConfig, calibration: Calibration | None
    ) -> tuple[bytes, dict[str, Any]]:
        """The serialised model the session runs (the export, quantized where the configuration
        says) and what the record keeps of it; from the run's cache of built graphs when one is
        set (rexbench.measure.backends.artifacts)."""
        if not self.calibrates(config):
            calibration = None

        def build(folder: Path) -> dict[str, Any]:
            blob, info = self.exported(module, x, config, calibration)
            (folder / GRAPH).write_bytes(blob)
            return info

        parts = [
            self.name,
            config.options,
            config.dtype,
            list(x.shape),
            calibration,
        ]
        entry = artifacts.cached(module, parts, ("torch", "onnx", "onnxruntime"), build)
        if entry is None:
            return self.exported(module, x, config, calibration)
        return (entry.folder / GRAPH).read_bytes(), artifacts.with_note(entry, entry.info)

    def exported(
        self, module: nn.Module, x: Any, config: RunConfig, calibration: Calibration | None
    ) -> tuple[bytes, dict[str, Any]]:
        """The module exported to ONNX, quantized to int8 on `calibration` when given."""
        import torch

        with torch.inference_mode(False), torch.no_grad():
            blob, info = export_onnx(module, x)
        if calibration is not None:
            info["onnx_bytes_fp32"] = len(blob)
            inputs = calibration.inputs(x.shape)
            blob, quantized = quantize(blob, inputs, config.batch_size, calibration)
            info.update(quantized)
            del inputs
        return blob, info

    def session(self, blob: bytes, device: str, threads: int) -> tuple[Any, dict[str, Any]]:
        """An InferenceSession with every graph optimisation, `threads` intra-op threads, sequential
        execution; the CUDA execution provider on cuda:N (refused when onnxruntime-gpu is missing or
        the session fell back to the CPU)."""
        ort = self.load()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only
        # the workers still spin between the operators of one run (ONNX Runtime's default), but stop
        # when it returns instead of spinning on for 36-44 ms of CPU time into the next chunk, which
        # on 2 cores took a core from the PyTorch configuration or anchor timed next
        # (measure.machine.own_threads)
        options.add_session_config_entry(FORCE_SPINNING_STOP, "1")
        provider: Any = "CPUExecutionProvider"
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RexbenchError(_NO_GPU)
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
            FORCE_SPINNING_STOP: "1",
        }
        return session, info


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


def _on_gpu(ort_value: Any, index: int, dtype: Any, batch: Any) -> Any:
    """A host array as an OrtValue on cuda:`index`, in the engine's input dtype."""
    return ort_value.ortvalue_from_numpy(host_array(batch, dtype), "cuda", index)


def _ortvalue_fp32(value: Any) -> Any:
    """An OrtValue on the GPU, copied to the host as an fp32 array."""
    return fp32_array(value.numpy())
