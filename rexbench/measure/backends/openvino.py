"""OpenVINO as a backend (`--config openvino`): the module converted by `openvino.convert_model` and
compiled for OpenVINO's CPU device with a LATENCY hint, the run's threads and the run's precision.
One inference is `InferRequest.infer` on one reused request, the input shared rather than copied. An
optional extra, `rexbench[openvino]`, imported only when a configuration uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends.base import timed
from rexbench.measure.backends.engine import Engine, EngineBackend
from rexbench.measure.backends.quiet import quiet

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.config import RunConfig

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

    def build(self, module: nn.Module, x: Any, config: RunConfig, threads: int) -> Engine:
        import torch

        ov = self.load()
        with quiet(), torch.inference_mode(False), torch.no_grad():
            ov_model, convert_s = timed(lambda: ov.convert_model(module, example_input=x))
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
            "convert_s": convert_s,
            "compile_s": compile_s,
        }
        return Engine(OpenVinoRunner(compiled), x.detach().cpu().numpy(), info)


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
