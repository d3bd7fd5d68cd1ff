"""What every backend starts from: the device (checked to exist), the dtype (checked to run natively
there) and the seeded input batch. torch is imported inside the functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    import torch

    from rexbench.measure.config import RunConfig

DEFAULT_RESOLUTION = 224


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
