"""PyTorch's own int8 for x86 CPUs (`--config pt2e_int8`): PT2E post-training quantization, as
PyTorch's "PyTorch 2 Export Quantization with X86 Backend through Inductor" recipe does it. The
model is captured by torch.export, annotated by the X86InductorQuantizer with its default
configuration (activations uint8 per tensor with a zero point, HistogramObserver ranges; weights
int8 symmetric per output channel), observed on the calibration inputs (`prepare_pt2e`),
converted to quantize/dequantize pairs (`convert_pt2e`), then compiled by torch.compile with
inductor's freezing, which folds the pairs and the weights into oneDNN's int8 convolutions.

Since torch 2.10 these functions live in torchao (`torchao.quantization.pt2e`), the
`rexbench[int8]` extra. X86InductorQuantizer produces kernels for x86 CPUs only: elsewhere
`available` says so in one line and the configuration is skipped. torch and torchao are imported
inside the functions.
"""

from __future__ import annotations

import copy
import platform
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends.base import Backend, PreparedModel, Preset
from rexbench.measure.backends.calibration import Calibration, chunks
from rexbench.measure.backends.inputs import make_input
from rexbench.measure.backends.quiet import quiet
from rexbench.measure.backends.torch import first_call

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from rexbench.measure.config import RunConfig

X86 = ("x86_64", "amd64", "i686", "i386")
METHOD = (
    "torchao PT2E: torch.export, X86InductorQuantizer default config (activations uint8 "
    "HistogramObserver, weights int8 per channel), prepare_pt2e, convert_pt2e"
)


class Pt2eBackend(Backend):
    """int8 through PT2E and torch.compile with freezing, on the CPU, from the fp32 model."""

    name = "pt2e"
    title = "PyTorch PT2E"
    module = "torchao"
    extra = "rexbench[int8]"
    devices = ("cpu",)
    dtypes = ("fp32",)

    def presets(self) -> Sequence[Preset]:
        return (Preset("pt2e_int8", "int8, PT2E + torch.compile"),)

    def calibrates(self, config: RunConfig) -> bool:
        return True

    def check(self, config: RunConfig) -> None:
        if config.device != "cpu":
            raise RexbenchError("--config pt2e_int8 runs on the CPU: use --device cpu")
        super().check(config)

    def available(self, device: str) -> str | None:
        machine = platform.machine()
        if machine.lower() not in X86:
            return f"--config pt2e_int8 quantizes for x86 CPUs (X86InductorQuantizer); this one is {machine}"
        return super().available(device)

    def version(self) -> str:
        import torch

        return f"torchao {super().version()}, torch {torch.__version__}"

    def prepare(
        self,
        model: nn.Module,
        config: RunConfig,
        device: str,
        *,
        default_resolution: int,
        input_shape: Sequence[int] | None = None,
        in_place: bool = False,
        calibration: Calibration | None = None,
    ) -> PreparedModel:
        import torch

        start = time.perf_counter()
        calibration = calibration or Calibration()
        module = (model if in_place else copy.deepcopy(model)).eval().float()
        x = make_input(replace(config, device=device), default_resolution, input_shape=input_shape)
        inputs = calibration.inputs(x.shape)
        begin = time.perf_counter()
        with torch.inference_mode(False), torch.no_grad():  # export and observers: no autograd
            converted = quantized(module, x, inputs, config.batch_size)
        quantize_s = time.perf_counter() - begin
        info = calibration.describe(
            METHOD, len(inputs), batch=config.batch_size, quantize_s=quantize_s
        )
        del inputs, module
        prepared = PreparedModel(
            module=torch.compile(converted, dynamic=False),
            input=x,
            config=config,
            device=device,
            resolution=int(x.shape[-2]),
        )
        setup_s = time.perf_counter() - start
        with warnings.catch_warnings():  # inductor's int8 lowering warns about its own code
            warnings.filterwarnings("ignore", category=UserWarning, module="torch._inductor")
            first = first_call(prepared, freezing=True)
        prepared.compile_s = setup_s + first
        prepared.runtime = self.record(
            config,
            setup_s,
            precision="int8",
            calibration=info,
            compiler="torch.compile(dynamic=False), inductor freezing",
            first_call_s=first,
        )
        return prepared


def quantized(module: nn.Module, x: Any, inputs: np.ndarray, batch: int) -> Any:
    """`module` exported at `x`'s shape, observed on `inputs` (`batch` at a time) and converted."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    with quiet():
        exported = torch.export.export(module, (x,)).module()
        observed = prepare_pt2e(exported, quantizer)
        for chunk in chunks(inputs, batch):
            observed(torch.from_numpy(chunk))
        return convert_pt2e(observed)
