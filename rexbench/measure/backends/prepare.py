"""prepare(model, config): a deep copy made ready to time - eval, BatchNorm folded into the preceding
convolutions, device and dtype, channels-last, torch.compile (inductor freezing in a scoped context)
- with the compilation (first call) timed on its own. The caller's model is left as it was, unless
it hands the model over (`in_place`).

Call it inside `timing.backend_settings(...)` so compilation sees the threads and cuDNN/TF32
settings the measurement will use.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends import cudagraphs
from rexbench.measure.config import RunConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

DEFAULT_RESOLUTION = 224
FOLD_FX = "torch.fx.experimental.optimization.fuse"
FOLD_SEQUENTIAL = "torch.nn.utils.fusion.fuse_conv_bn_eval (nn.Sequential pairs)"


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def resolve_device(device: str) -> str:
    """Check that a device string names a usable device; return its canonical form ("cpu", "cuda:0")."""
    import torch

    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "no visible GPU"
            raise RexbenchError(
                f"--device {device} asked for CUDA, but CUDA is not available "
                f"(torch {torch.__version__}, {build}); use --device cpu"
            )
        index = torch.cuda.current_device() if device == "cuda" else device.partition(":")[2]
        count = torch.cuda.device_count()
        if not str(index).isdigit() or int(index) >= count:
            raise RexbenchError(
                f"unknown CUDA device {device!r}; this machine has cuda:0..cuda:{count - 1}"
            )
        return f"cuda:{int(index)}"
    raise RexbenchError(f"unknown device {device!r}; use cpu, cuda or cuda:N")


def _cpu_supports(dtype: str) -> bool:
    """Whether oneDNN has native kernels for this dtype on this CPU (AVX-512 BF16/AMX for bf16,
    AVX-512 FP16/AMX-FP16 for fp16); without them PyTorch falls back to slow reference code."""
    import torch

    check = {
        "bf16": "_is_mkldnn_bf16_supported",
        "fp16": "_is_mkldnn_fp16_supported",
    }[dtype]
    try:
        return bool(getattr(torch.ops.mkldnn, check)())
    except (AttributeError, RuntimeError):
        return False


def check_dtype(device: str, dtype: str) -> None:
    """Refuse a dtype the device cannot run natively, with a one-line RexbenchError."""
    if dtype == "fp32":
        return
    import torch

    if device.startswith("cuda"):
        if dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise RexbenchError(
                f"bf16 is not supported on {torch.cuda.get_device_name(device)}; use --dtype fp16 or fp32"
            )
        return
    if not _cpu_supports(dtype):
        needs = "AVX-512 BF16 or AMX" if dtype == "bf16" else "AVX-512 FP16 or AMX-FP16"
        found = torch.backends.cpu.get_cpu_capability()
        raise RexbenchError(
            f"{dtype} is not supported on this CPU (needs {needs}, found {found}); use --dtype fp32"
        )


def make_input(
    config: RunConfig,
    default_resolution: int = DEFAULT_RESOLUTION,
    seed: int = 0,
    *,
    input_shape: Sequence[int] | None = None,
) -> torch.Tensor:
    """A seeded random batch (batch, C, H, W) on config.device, in its dtype and memory format.

    (C, H, W): `input_shape` if given (the caller resolved it), else config.input_shape, else
    3 x R x R with R = config.resolution or `default_resolution`.
    """
    import torch

    resolution = config.resolution or default_resolution
    shape = input_shape or config.input_shape or (3, resolution, resolution)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(config.batch_size, *shape, generator=generator)
    x = x.to(device=config.device, dtype=torch_dtype(config.dtype))
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


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


@dataclass
class PreparedModel:
    """A model ready to time: `run()` is one forward pass on the prepared input.

    compile_s: seconds of the first call of the compiled model (compilation plus one run), None
    when not compiled; for a runtime, its whole setup (rexbench.measure.backends.runtimes). bn_folded /
    bn_remaining: BatchNorm layers folded away / left. cudagraphs: for a model replayed as CUDA
    graphs, its warm-up until the graph was recorded (rexbench.measure.backends.cudagraphs.warm_up).
    runtime: what ONNX Runtime or OpenVINO did.
    """

    module: Any
    input: Any
    config: RunConfig
    device: str
    resolution: int
    compile_s: float | None = None
    bn_folded: int = 0
    bn_remaining: int = 0
    fold_method: str | None = None
    notes: list[str] = field(default_factory=list)
    cudagraphs: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = None

    def run(self) -> Any:
        return self.module(self.input)

    def to_dict(self) -> dict[str, Any]:
        """What a record keeps about the preparation (not the module or the tensor)."""
        return {
            "device": self.device,
            "resolution": self.resolution,
            "input_shape": _shape(self.input),
            "input_dtype": _dtype(self.input),
            "input_channels_last": _is_channels_last(self.input),
            "compile_s": self.compile_s,
            "bn_folded": self.bn_folded,
            "bn_remaining": self.bn_remaining,
            "fold_method": self.fold_method,
            "notes": list(self.notes),
            **({"cudagraphs": self.cudagraphs} if self.cudagraphs is not None else {}),
            **({"runtime": dict(self.runtime)} if self.runtime is not None else {}),
        }


def _shape(x: Any) -> list[int]:
    """A tensor's or array's shape; an OrtValue's is a method."""
    shape = x.shape
    return list(shape() if callable(shape) else shape)


def _dtype(x: Any) -> str:
    """ "float32", "bfloat16" ...: a tensor's or array's dtype, or an OrtValue's element type."""
    dtype = getattr(x, "dtype", None)
    return str(dtype if dtype is not None else x.data_type()).replace("torch.", "")


def _is_channels_last(x: Any) -> bool:
    import torch

    if not isinstance(x, torch.Tensor):  # a runtime's input (NumPy array, OrtValue)
        return False
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def _first_call(prepared: PreparedModel, freezing: bool) -> float:
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


def prepare(
    model: nn.Module,
    config: RunConfig,
    default_resolution: int = DEFAULT_RESOLUTION,
    *,
    input_shape: Sequence[int] | None = None,
    in_place: bool = False,
) -> PreparedModel:
    """Deep-copy `model` and prepare the copy as `config` says; the input model is left untouched.
    in_place: prepare `model` itself, for a caller that needs it no more (one copy of the weights
    fewer in memory; rexbench.measure.run.profile says why that matters for the timing).

    Order: eval -> fold BN (fp32, on CPU) -> device and dtype -> channels-last -> torch.compile and
    its first call (timed as compile_s). `default_resolution` is the model's own, used when
    config.resolution is None; `input_shape` (C, H, W), when given, overrides both (see make_input).
    torch.compile gets dynamic=False: the shapes are fixed, and dynamo's automatic dynamic shapes
    (after it saw another shape of the same code, e.g. another width of the same model class)
    would otherwise compile slower shape-generic kernels.
    """
    import torch

    device = resolve_device(config.device)
    check_dtype(device, config.dtype)
    config_on_device = config if device == config.device else _with_device(config, device)
    if config.runtime is not None:  # ONNX Runtime or OpenVINO prepares the model itself
        from rexbench.measure.backends.runtimes import prepare_with_runtime

        return prepare_with_runtime(model, config_on_device, default_resolution, input_shape)
    module = (model if in_place else copy.deepcopy(model)).eval()
    before = count_batchnorm(module)
    fold_method = None
    if config.fold_bn:
        module, fold_method = fold_batchnorm(module)
    remaining = count_batchnorm(module)
    module = module.to(device=device, dtype=torch_dtype(config.dtype))
    if config.channels_last:
        module = module.to(memory_format=torch.channels_last)
    notes = []
    graphs = config.compile and cudagraphs.uses_cudagraphs(config.compile_mode, device)
    if config.compile:
        mode = None if config.compile_mode == "default" else config.compile_mode
        module = torch.compile(module, mode=mode, dynamic=False)
        if mode == "reduce-overhead" and device == "cpu":
            notes.append(
                "reduce-overhead uses CUDA graphs; on CPU it behaves like the default mode"
            )
        if graphs:  # every call a new CUDA graph step (see rexbench.measure.backends.cudagraphs)
            module = cudagraphs.stepping(module)
    x = make_input(config_on_device, default_resolution, input_shape=input_shape)
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
    if config.compile:
        before = cudagraphs.compile_counters() if graphs else {}
        prepared.compile_s = _first_call(prepared, config.freezing)
        if graphs:  # warmed up until recorded, at the timed input: the timed calls replay it
            prepared.cudagraphs = cudagraphs.warm_up(prepared.run, device, before)
    return prepared


def _with_device(config: RunConfig, device: str) -> RunConfig:
    from dataclasses import replace

    return replace(config, device=device)
