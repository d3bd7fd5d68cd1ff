"""A prepared configuration's outputs on given inputs (the fidelity set's photographs, rexbench.models
.photos), through the same call the timing loop times, on any backend.

The inputs (an N x C x H x W fp32 NumPy array) are fed `batch` at a time, each chunk in the form of
the prepared input (a torch tensor of its dtype, device and memory format, or a NumPy array of its
dtype); a last chunk short of the batch is padded with its own first rows, which are dropped from
the result. The output is read as the output check reads it (`PreparedModel.read`), fp32. torch is
imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from rexbench.measure.backends.base import PreparedModel


def like(template: Any, array: np.ndarray) -> Any:
    """`array` in the form of `template`: a NumPy array of its dtype, or a torch tensor of its
    dtype, device and memory format (channels-last when the template is)."""
    import numpy as np

    if isinstance(template, np.ndarray):
        return np.ascontiguousarray(array, dtype=template.dtype)
    import torch

    if not isinstance(template, torch.Tensor):
        raise TypeError(f"cannot feed a {type(template).__name__} input from host arrays")
    x = torch.from_numpy(np.ascontiguousarray(array)).to(
        device=template.device, dtype=template.dtype
    )
    channels_last = template.dim() == 4 and not template.is_contiguous()
    if channels_last and template.is_contiguous(memory_format=torch.channels_last):
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def prepared_logits(prepared: PreparedModel, inputs: np.ndarray) -> np.ndarray:
    """The prepared model's fp32 outputs for every row of `inputs`, as an N x ... array."""
    import numpy as np
    import torch

    batch = int(prepared.input.shape[0])
    rows = len(inputs)
    outputs = []
    with torch.inference_mode():
        for start in range(0, rows, batch):
            chunk = inputs[start : start + batch]
            short = batch - len(chunk)
            if short:
                chunk = np.concatenate([chunk, np.resize(chunk, (short, *chunk.shape[1:]))])
            out = prepared.read(prepared.module(like(prepared.input, chunk)))
            outputs.append(np.asarray(out)[: batch - short])
    return np.concatenate(outputs)
