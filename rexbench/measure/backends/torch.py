"""PyTorch as a backend: the model run eagerly or through torch.compile, with the preparations that
make it faster (channels-last, BatchNorm folded into the preceding convolutions, inductor freezing,
CUDA graphs) and the presets that name their useful combinations.

`prepare` makes a deep copy ready to time - eval, BatchNorm folded, device and dtype, channels-last,
torch.compile (inductor freezing in a scoped context) - with the compilation (first call) timed on
its own. The caller's model is left as it was, unless it hands the model over (`in_place`). Call it
inside `timing.backend_settings(...)` so compilation sees the threads and cuDNN/TF32 settings the
measurement will use. torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rexbench.measure.backends import cudagraphs
from rexbench.measure.backends.base import TORCH_FIELDS, Backend, PreparedModel, Preset
from rexbench.measure.backends.inputs import make_input, torch_dtype

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.config import RunConfig

FOLD_FX = "torch.fx.experimental.optimization.fuse"
FOLD_SEQUENTIAL = "torch.nn.utils.fusion.fuse_conv_bn_eval (nn.Sequential pairs)"


class TorchBackend(Backend):
    """PyTorch in this process. Its knobs are RunConfig's own fields: channels_last, fold_bn,
    compile, compile_mode and freezing."""

    name = "torch"
    title = "PyTorch"
    module = "torch"
    torch_preparation = True
    countable = True
    prepared_again_cheaply = True  # torch.compile finds its kernels in its own cache

    def presets(self) -> Sequence[Preset]:
        off = dict.fromkeys(TORCH_FIELDS, False)
        return (
            Preset("eager", fields=off),
            Preset("channels_last", fields={**off, "channels_last": True}),
            Preset("compile", fields={**off, "compile": True}),
            Preset("compile_cl", fields={**off, "channels_last": True, "compile": True}),
            # The fastest CPU inference recipe PyTorch offers (measured in benchmarks/profile.md):
            # BN folded into convs, channels-last, torch.compile with inductor's freezing.
            Preset("max", "BN folded + freezing", dict.fromkeys(TORCH_FIELDS, True)),
            # compile_cl replayed as CUDA graphs (torch.compile mode "reduce-overhead"; on CPU it
            # behaves like compile_cl): warmed up until the graph is recorded (cudagraphs.py).
            Preset(
                "cudagraphs",
                "compile_cl replayed as CUDA graphs",
                {**off, "channels_last": True, "compile": True, "compile_mode": "reduce-overhead"},
            ),
        )

    def label(self, config: RunConfig) -> str:
        """Its parts joined by '+': "fold_bn+cl+eager", "cl+compile:max-autotune"."""
        parts = ["fold_bn"] if config.fold_bn else []
        parts += ["cl"] if config.channels_last else []
        if config.compile:
            mode = "" if config.compile_mode == "default" else f":{config.compile_mode}"
            parts.append(f"compile{mode}")
        else:
            parts.append("eager")
        parts += ["freezing"] if config.freezing else []
        return "+".join(parts)

    def option_values(self, config: RunConfig) -> dict[str, Any]:
        return {f: getattr(config, f) for f in (*TORCH_FIELDS, "compile_mode")}

    def prepare(
        self,
        model: nn.Module,
        config: RunConfig,
        device: str,
        *,
        default_resolution: int,
        input_shape: Sequence[int] | None = None,
        in_place: bool = False,
    ) -> PreparedModel:
        """Order: eval -> fold BN (fp32, on CPU) -> device and dtype -> channels-last ->
        torch.compile and its first call (timed as compile_s). torch.compile gets dynamic=False:
        the shapes are fixed, and dynamo's automatic dynamic shapes (after it saw another shape of
        the same code, e.g. another width of the same model class) would otherwise compile slower
        shape-generic kernels."""
        start = time.perf_counter()
        module = (model if in_place else copy.deepcopy(model)).eval()
        before = count_batchnorm(module)
        fold_method = None
        if config.fold_bn:
            module, fold_method = fold_batchnorm(module)
        remaining = count_batchnorm(module)
        module, notes = _compiled(module, config, device)
        on_device = config if device == config.device else replace(config, device=device)
        x = make_input(on_device, default_resolution, input_shape=input_shape)
        prepared = PreparedModel(
            module=module,
            input=x,
            config=config,
            device=device,
            resolution=int(x.shape[-2]),
            bn_folded=before - remaining,
            bn_remaining=remaining,
            fold_method=fold_method,
            notes=notes,
        )
        prepared.runtime = self.record(config, time.perf_counter() - start)
        if config.compile:
            graphs = cudagraphs.uses_cudagraphs(config.compile_mode, device)
            counters = cudagraphs.compile_counters() if graphs else {}
            prepared.compile_s = first_call(prepared, config.freezing)
            if graphs:  # warmed up until recorded, at the timed input: the timed calls replay it
                prepared.cudagraphs = cudagraphs.warm_up(prepared.run, device, counters)
        return prepared


def _compiled(module: nn.Module, config: RunConfig, device: str) -> tuple[Any, list[str]]:
    """The module on `device` in the run's dtype and layout, wrapped in torch.compile when asked
    (every call a new CUDA graph step where the mode records graphs); notes for the record."""
    import torch

    module = module.to(device=device, dtype=torch_dtype(config.dtype))
    if config.channels_last:
        module = module.to(memory_format=torch.channels_last)
    if not config.compile:
        return module, []
    notes = []
    mode = None if config.compile_mode == "default" else config.compile_mode
    compiled = torch.compile(module, mode=mode, dynamic=False)
    if mode == "reduce-overhead" and device == "cpu":
        notes.append("reduce-overhead uses CUDA graphs; on CPU it behaves like the default mode")
    if cudagraphs.uses_cudagraphs(config.compile_mode, device):
        compiled = cudagraphs.stepping(compiled)
    return compiled, notes


def first_call(prepared: PreparedModel, freezing: bool) -> float:
    """Run the compiled model once (this is when torch.compile compiles) and time it on its own.

    Inductor freezing is switched on only for this call through `torch._inductor.config.patch`,
    which restores the global config on exit; under inference_mode, as the timing loop runs.
    """
    import torch

    from rexbench.measure.timing.devices import device_ops, oom_error

    ops = device_ops(prepared.device)
    scope = torch._inductor.config.patch(freezing=True) if freezing else contextlib.nullcontext()
    start = time.perf_counter()
    try:
        with scope, torch.inference_mode():
            prepared.run()
            ops.synchronize()
    except Exception as exc:
        if ops.is_oom(exc):
            ops.after_oom()
            raise oom_error(prepared.device, prepared.config.batch_size, "compilation") from None
        raise
    return time.perf_counter() - start


def count_batchnorm(model: nn.Module) -> int:
    from torch import nn

    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _fold_sequential(model: nn.Module) -> nn.Module:
    """Fallback for forwards torch.fx cannot trace: fold Conv2d -> BatchNorm2d pairs that sit next
    to each other in a plain nn.Sequential (whose forward is known to chain them)."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in list(model.modules()):
        if not isinstance(seq, nn.Sequential) or type(seq).forward is not nn.Sequential.forward:
            continue
        keys = list(seq._modules)
        for first, second in zip(keys, keys[1:], strict=False):
            conv, bn = seq._modules[first], seq._modules[second]
            if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d:
                seq._modules[first] = fuse_conv_bn_eval(conv, bn)
                seq._modules[second] = nn.Identity()
    return model


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, str]:
    """Fold every eval-mode BatchNorm that directly follows a convolution into its weights.

    Uses torch.fx's fuse pass (conv -> bn pairs whose conv output has no other user; covers the
    ReXNet partial residual and the BN inside its SE). Modifies `model` (give it a copy); returns
    the folded module (an fx.GraphModule when traced) and the method used.
    """
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model, inplace=True), FOLD_FX
    except Exception:  # data-dependent control flow etc.: fx cannot trace this forward
        return _fold_sequential(model), FOLD_SEQUENTIAL
