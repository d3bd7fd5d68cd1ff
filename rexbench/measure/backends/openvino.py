"""OpenVINO as a backend (`--config openvino`): the module converted by `openvino.convert_model` and
compiled for OpenVINO's CPU device with a LATENCY hint, the run's threads and the run's precision.
One inference is `InferRequest.infer` on one reused request, the input shared rather than copied.
`--config openvino_int8` (option quantize=int8) quantizes the converted model with NNCF first
(openvino_quantize.py). An optional extra, `rexbench[openvino]`, imported only when a configuration
uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends import artifacts
from rexbench.measure.backends.base import Option, Package, Preset, timed
from rexbench.measure.backends.engine import Engine, EngineBackend
from rexbench.measure.backends.openvino_quantize import NNCF, quantize
from rexbench.measure.backends.quiet import quiet

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.backends.calibration import Calibration
    from rexbench.measure.config import RunConfig

QUANTIZE = ("none", "int8")
GRAPH = "model.xml"  # the graph's IR in the cache of built graphs (with model.bin beside it)

_PRECISION = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}


class OpenVinoBackend(EngineBackend):
    """The fp32 graph, with the run's dtype as the plugin's inference precision (refused when the
    plugin reports another one: f16 becomes bf16 on CPUs without fp16 arithmetic)."""

    name = "openvino"
    title = "OpenVINO"
    module = "openvino"
    extra = "rexbench[openvino]"
    devices = ("cpu",)
    fp32_graph = True
    options = {"quantize": Option("none", "int8: NNCF post-training quantization", QUANTIZE)}

    def presets(self) -> Sequence[Preset]:
        return (
            Preset(self.name, self.title),
            Preset("openvino_int8", "int8, NNCF", {"options": {"quantize": "int8"}}),
        )

    def calibrates(self, config: RunConfig) -> bool:
        return dict(config.options).get("quantize") == "int8"

    def packages(self, config: RunConfig) -> tuple[Package, ...]:
        return (*super().packages(config), *((NNCF,) if self.calibrates(config) else ()))

    def refuses(self, config: RunConfig) -> str | None:
        if self.calibrates(config) and config.dtype != "fp32":
            return "--config openvino_int8 quantizes the fp32 model: it takes --dtype fp32 only"
        return super().refuses(config)

    def build(
        self,
        module: nn.Module,
        x: Any,
        config: RunConfig,
        threads: int,
        *,
        calibration: Calibration | None = None,
    ) -> Engine:
        ov = self.load()
        ov_model, built = self.graph(module, x, config, calibration)
        hints = openvino_hints(config.dtype, threads)
        core = ov.Core()
        compiled, compile_s = timed(lambda: core.compile_model(ov_model, "CPU", hints))
        got = compiled.get_property("INFERENCE_PRECISION_HINT")
        effective = {name: getattr(ov.Type, name) for name in _PRECISION.values()}
        if got != effective[hints["INFERENCE_PRECISION_HINT"]]:
            raise RexbenchError(
                f"OpenVINO runs {got.get_type_name()} where --dtype {config.dtype} asked for "
                f"{hints['INFERENCE_PRECISION_HINT']} (this CPU has no native {config.dtype} arithmetic)"
            )
        keys = ("PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS")
        reported = {key: str(compiled.get_property(key)) for key in keys}
        info = {
            "converter": "openvino.convert_model (from the torch module)",
            "device": "CPU",
            "device_name": str(core.get_property("CPU", "FULL_DEVICE_NAME")),
            "hints": hints,
            "compiled": {**reported, "INFERENCE_PRECISION_HINT": got.get_type_name()},
            **built,
            "compile_s": compile_s,
        }
        return Engine(OpenVinoRunner(compiled), x.detach().cpu().numpy(), info)

    def graph(
        self, module: nn.Module, x: Any, config: RunConfig, calibration: Calibration | None
    ) -> tuple[Any, dict[str, Any]]:
        """The OpenVINO model to compile (converted, quantized where the configuration says) and
        what the record keeps of it; from the run's cache of built graphs when one is set
        (rexbench.measure.backends.artifacts), kept there as IR with fp32 weights."""
        ov = self.load()
        if not self.calibrates(config):
            calibration = None
        converted: list[Any] = []

        def build(folder: Path) -> dict[str, Any]:
            ov_model, info = self.converted(module, x, config, calibration)
            ov.save_model(ov_model, folder / GRAPH, compress_to_fp16=False)
            converted.append(ov_model)
            return info

        parts = [self.name, config.options, list(x.shape), calibration]
        entry = artifacts.cached(module, parts, ("torch", "openvino", "nncf"), build)
        if entry is None:
            return self.converted(module, x, config, calibration)
        if converted:
            return converted[0], entry.info
        model = ov.Core().read_model(entry.folder / GRAPH)
        return model, artifacts.with_note(entry, entry.info)

    def converted(
        self, module: nn.Module, x: Any, config: RunConfig, calibration: Calibration | None
    ) -> tuple[Any, dict[str, Any]]:
        """The module converted by `openvino.convert_model`, quantized by NNCF on `calibration`
        when given."""
        import torch

        ov = self.load()
        with quiet(), torch.inference_mode(False), torch.no_grad():
            ov_model, convert_s = timed(lambda: ov.convert_model(module, example_input=x))
        quantized: dict[str, Any] = {}
        if calibration is not None:
            inputs = calibration.inputs(x.shape)
            ov_model, quantized = quantize(ov_model, inputs, config.batch_size, calibration)
            del inputs
        return ov_model, {"convert_s": convert_s, **quantized}


def openvino_hints(dtype: str, threads: int) -> dict[str, Any]:
    """The CPU plugin's properties: LATENCY, `threads` inference threads, the run's precision (f32
    asked for explicitly: the plugin's default on CPUs with AMX or AVX-512 BF16 is bf16)."""
    return {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": _PRECISION[dtype],
    }


class OpenVinoRunner:
    """One OpenVINO inference on a host array through one reused InferRequest (the input shared,
    not copied; the output tensor's array returned)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def __call__(self, x: Any) -> Any:
        self.request.infer([x], share_inputs=True, share_outputs=True)
        return self.request.get_output_tensor(0).data
