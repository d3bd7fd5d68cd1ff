"""Output parity of a prepared configuration against eager fp32, for the GPU check: one function,
`output_parity`, with its tolerances (kept apart so that a general parity check can replace it).
torch is imported inside the function.
"""

from __future__ import annotations

from typing import Any

#: Largest relative RMSE of a configuration's logits against eager fp32 (TF32 off). fp16 / bf16: ten
#: times torch.testing.assert_close's default rtol for the dtype (1e-3 / 1.6e-2, the precision of
#: one operation, torch/testing/_comparison.py), for the rounding a whole network accumulates. fp32:
#: 1e-3, far above what reassociation does (compiled kernels, folded BatchNorm, the algorithm cuDNN's
#: benchmark mode picks: about 1e-6) and far below a broken preparation (about 1).
PARITY_TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2, "bf16": 1.6e-1}
PARITY_SOURCE = (
    "relative RMSE of the logits vs eager fp32; fp16/bf16: 10 x torch.testing.assert_close's "
    "default rtol for the dtype (1e-3, 1.6e-2); fp32: 1e-3"
)


def output_parity(reference: Any, output: Any, dtype: str) -> dict[str, Any]:
    """Relative RMSE of `output` against `reference` (both logits; compared in fp64), top-1
    agreement and finiteness; ok when finite and within PARITY_TOLERANCE[dtype].

    Kept to this one function so that a general parity check can replace it."""
    import torch

    ref = reference.detach().to("cpu", torch.float64)
    out = output.detach().to("cpu", torch.float64)
    if out.shape != ref.shape:
        return {"ok": False, "why": f"shape {tuple(out.shape)} vs {tuple(ref.shape)}"}
    finite = bool(torch.isfinite(out).all())
    err = float(
        torch.linalg.vector_norm(out - ref) / torch.linalg.vector_norm(ref).clamp_min(1e-30)
    )
    top1 = float((out.argmax(-1) == ref.argmax(-1)).double().mean()) if out.dim() == 2 else None
    tol = PARITY_TOLERANCE[dtype]
    return {"ok": finite and err <= tol, "rel_rmse": err, "tolerance": tol,
            "top1_agreement": top1, "finite": finite}  # fmt: skip
