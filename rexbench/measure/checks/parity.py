"""Output parity: does a prepared configuration (BN folded, frozen, compiled, exported to ONNX
Runtime, converted to OpenVINO, run in half precision, quantized to int8, on any backend and device)
still compute the eager fp32 model's function? One check and one tolerance table for every backend.

Before a configuration is timed, its prepared model is called once on the seeded input it will be
timed on, its output read through the backend protocol as an fp32 array
(`PreparedModel.output()`), and compared with the eager fp32 model's output on the same input (on
the CPU). Stored in the record's `parity`:

- max_abs_diff: max |output - reference|;
- rel_l2: ||output - reference||_2 / ||reference||_2 over the whole batch of outputs;
- top1_agreement: fraction of the batch whose arg-max agrees (informative only: random weights
  can leave near-ties that half precision legitimately flips);
- for a configuration that quantizes to int8, also its `fidelity` on the fidelity set's evaluation
  half (rexbench.measure.run.calibrated) and `judged_by`, which says what gave the verdict.

The configuration is valid when rel_l2 <= TOLERANCES[precision], its dtype's or, for a
configuration that quantizes, int8's (Backend.precision). An int8 configuration is judged on
real images instead (`judge_by_fidelity`): the relative L2 of its logits on the evaluation half,
the kind of input its calibration saw, against the same int8 tolerance. The seeded random input
lies outside the calibrated ranges of a trained model: with one scale per weight tensor instead of
per channel, the trained EfficientNet-Lite0's int8 moved its logits on the photographs by 0.60 and
kept 53% of their top-1 classes, while the seeded input's rel_l2 read 0.32. The seeded input's
numbers are kept, and judge where the fidelity cannot be taken. The relative L2 norm is used rather
than an element-wise relative test because a classifier's logits sit around zero, where an
element-wise relative error means nothing. Where each number comes from (TOLERANCE_SOURCES):

- fp32, 1e-3: the rtol with which PyTorch's ONNX export tutorial accepts ONNX Runtime's output as
  the PyTorch model's; reassociation (compiled kernels, folded BatchNorm, another runtime) stays
  near 1e-6, a broken preparation near 1.
- fp16, 1.6e-2: torch.testing.assert_close's default rtol for bfloat16, the coarser half format
  (torch/testing/_comparison.py, _DTYPE_PRECISIONS: float16 rtol 1e-3, bfloat16 rtol 1.6e-2, both
  atol 1e-5; fp16's own is the rounding of one operation, not of a whole network).
- bf16, 1.28e-1: the fp16 tolerance times 8, the ratio of the two formats' unit roundoffs: bfloat16
  keeps 8 significand bits (u = 2^-8 = 3.9e-3), float16 11 (u = 2^-11 = 4.9e-4); torch.finfo
  gives eps = 2u, 2^-7 and 2^-10. A whole network's error scales with u, not with one operation's
  tolerance: on the 28 built-in models (benchmarks/half_precision_parity.py, eager on the CPU),
  bf16's rel_l2 is 7.2 to 9.1 times fp16's (EfficientNet-lite1-3: 4.5 to 6.3) and reaches 4.5e-2,
  so assert_close's per-operation 1.6e-2 would call the correct bf16 runs of EfficientNet-lite1-3
  (3.1e-2 to 4.5e-2) invalid.
- int8, 5.12e-1: the bf16 tolerance times 4, the crest factor (max / RMS) of an activation tensor.
  Both formats space their values 2^-7 apart, bfloat16 relative to each value (eps), int8 relative
  to the tensor's calibrated maximum (a scale of max / 127): int8's rounding noise relative to the
  tensor's RMS is therefore bf16's times max / RMS, and a Gaussian-like tensor of 10^4 to 10^5
  values peaks near 4 standard deviations. It judges whether a quantized configuration still
  computes the model's function, not whether it is good enough to deploy (its top-1 agreement
  against the accuracy a deployment may lose says that). Correct int8 preparations measured
  6.6e-3 to 3.9e-2 on the evaluation half (ONNX Runtime, OpenVINO and PT2E; seven built-in models
  with random weights at 224) and 1.5e-1 to 1.7e-1 with the trained EfficientNet-Lite0
  (benchmarks/int8_fidelity.py); the per-tensor quantization above, 0.60, fails.

A check only means something when the weights do: freshly initialised models have BatchNorm layers
that compute the identity (weight 1, bias 0, running mean 0, variance 1), so a preparation that
dropped or misfolded them would pass, and a zero-initialised layer makes every output equal.
`nontrivial_weights` therefore draws seeded BatchNorm statistics and affine parameters, and
replaces all-zero weight tensors, before a model without a checkpoint is prepared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from rexbench.measure.backends.base import PreparedModel
    from rexbench.measure.config import RunConfig

#: Largest relative L2 error of a valid configuration, per dtype of the run.
TOLERANCES = {"fp32": 1e-3, "fp16": 1.6e-2, "bf16": 1.28e-1, "int8": 5.12e-1}
TOLERANCE_SOURCES = {
    "fp32": "rtol 1e-3 of PyTorch's ONNX export tutorial, the test with which it accepts ONNX "
    "Runtime's output as the PyTorch model's (np.testing.assert_allclose(..., rtol=1e-03, atol=1e-05))",
    "fp16": "rtol 1.6e-2 of torch.testing.assert_close for bfloat16, the coarser half format "
    "(fp16's own, 1e-3, is the rounding of a single operation, not of a whole network)",
    "bf16": "the fp16 tolerance x 8, the ratio of bfloat16's unit roundoff to float16's "
    "(2^-8 / 2^-11; torch.finfo eps 2^-7 / 2^-10): a whole network's error scales with it",
    "int8": "the bf16 tolerance x 4: the same 2^-7 spacing, relative to a tensor's calibrated "
    "maximum instead of each value, so noise relative to the RMS grows by the crest factor "
    "max / RMS, about 4 for a Gaussian-like activation tensor; applied to the relative L2 of "
    "the logits on the fidelity set's evaluation half",
}
SEED = 0


def seeded_model(spec: Any, weights: Any = None, seed: int = SEED) -> nn.Module:
    """`create_model(spec, weights)` with its random initialisation seeded (in a forked RNG: the
    caller's global RNG is untouched), so that every process that builds a model without a
    checkpoint builds the same network: each worker's copy, the parent's, and the eager fp32
    reference of a fidelity measurement (rexbench.tune.fidelity)."""
    import torch

    from rexbench.models.factory import create_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(spec, weights=weights)


def nontrivial_weights(model: nn.Module, seed: int = SEED) -> str:
    """Give `model` (in place) weights a parity check can see through, seeded: every BatchNorm's
    running mean ~ N(0, 0.1^2), running variance and weight ~ U(0.8, 1.2), bias ~ N(0, 0.1^2);
    every all-zero weight tensor (a zero-initialised classifier or last residual layer) ~
    N(0, 1 / fan_in). Returns what was done, for the record."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)

    def draw(
        shape: torch.Size, low: float | None = None, high: float | None = None
    ) -> torch.Tensor:
        if low is None:
            return torch.randn(shape, generator=generator) * 0.1
        return torch.empty(shape).uniform_(low, high, generator=generator)

    norms = zeros = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                if module.running_mean is not None and module.running_var is not None:
                    module.running_mean.copy_(draw(module.running_mean.shape))
                    module.running_var.copy_(draw(module.running_var.shape, 0.8, 1.2))
                if module.affine:
                    module.weight.copy_(draw(module.weight.shape, 0.8, 1.2))
                    module.bias.copy_(draw(module.bias.shape))
                norms += 1
                continue
            for param in module.parameters(recurse=False):
                if param.dim() > 1 and param.dtype.is_floating_point and not param.any():
                    fan_in = param[0].numel()
                    param.copy_(torch.randn(param.shape, generator=generator) / fan_in**0.5)
                    zeros += 1
    return (
        f"random (seed {seed}): BatchNorm statistics and affine parameters of {norms} layer(s) "
        f"drawn, {zeros} all-zero weight tensor(s) redrawn"
    )


def reference_input(config: RunConfig, shape: Any) -> torch.Tensor:
    """The input `prepare` builds for `config` (same seed and values), in fp32 NCHW on the CPU."""
    from rexbench.measure.backends.inputs import make_input
    from rexbench.measure.config import RunConfig

    plain = RunConfig(
        device="cpu",
        batch_size=config.batch_size,
        resolution=config.resolution,
        input_shape=config.input_shape,
        channels_last=False,
        compile=False,
    )
    return make_input(plain, input_shape=shape)


def reference_output(model: nn.Module, config: RunConfig, shape: Any) -> torch.Tensor:
    """The eager fp32 model's output on `config`'s seeded input (CPU, NCHW), as an fp32 tensor."""
    import copy

    import torch

    from rexbench.measure.backends.base import fp32_array

    module = copy.deepcopy(model).eval().float()
    with torch.inference_mode():
        return torch.from_numpy(fp32_array(module(reference_input(config, shape))))


def compare(output: torch.Tensor, reference: torch.Tensor, dtype: str) -> dict[str, Any]:
    """The parity numbers of one output against the reference and the verdict for `dtype`."""
    import torch

    tolerance = {"rel_l2": TOLERANCES[dtype], "dtype": dtype, "source": TOLERANCE_SOURCES[dtype]}
    data: dict[str, Any] = {"valid": False, "tolerance": tolerance, "reason": None}
    if output.shape != reference.shape:
        data["reason"] = f"output shape {list(output.shape)} vs {list(reference.shape)}"
        return data
    ref_norm = float(reference.norm())
    if not torch.isfinite(reference).all() or float(reference.max() - reference.min()) == 0:
        data["reason"] = "the eager output is constant or not finite: nothing to compare"
        return data
    diff = output - reference
    rows = reference.reshape(reference.shape[0], -1)
    data.update(
        max_abs_diff=float(diff.abs().max()),
        rel_l2=float(diff.norm()) / ref_norm,
        top1_agreement=float(
            (output.reshape(rows.shape).argmax(1) == rows.argmax(1)).float().mean()
        ),
        reference_max_abs=float(reference.abs().max()),
    )
    if not torch.isfinite(output).all():
        data.update(rel_l2=None, max_abs_diff=None, reason="the output is not finite")
    elif data["rel_l2"] > TOLERANCES[dtype]:
        data["reason"] = (
            f"relative L2 error {data['rel_l2']:.3g} > {TOLERANCES[dtype]:g} ({dtype} tolerance)"
        )
    else:
        data["valid"] = True
    return data


def check(prepared: PreparedModel, reference: torch.Tensor, weights: str) -> dict[str, Any]:
    """Call the prepared model once (under inference mode, as it is timed) and compare its output,
    read as fp32 through the backend, with the eager fp32 reference; `weights` says what the
    weights were (for the record)."""
    import torch

    from rexbench.measure.backends.registry import BACKENDS

    with torch.inference_mode():
        output = torch.from_numpy(prepared.output())
    config = prepared.config
    data = compare(output, reference, BACKENDS.get(config.runtime).precision(config))
    data["reference"] = "eager fp32 on the CPU, same seeded input"
    data["weights"] = weights
    return data


def judge_by_fidelity(data: dict[str, Any], rel_l2: float) -> None:
    """Give an int8 configuration's check (`compare`'s dict, changed in place) the verdict of its
    fidelity: valid when the relative L2 of its logits on the evaluation half is within the int8
    tolerance. A check that failed before any rel_l2 (another shape, not finite, a constant
    reference) keeps its verdict."""
    if data.get("rel_l2") is None:
        return
    limit = TOLERANCES["int8"]
    data["valid"] = rel_l2 <= limit
    data["reason"] = None
    if not data["valid"]:
        data["reason"] = (
            f"relative L2 error of the logits on the fidelity set's evaluation half "
            f"{rel_l2:.3g} > {limit:g} (int8 tolerance)"
        )


def invalid_note(data: dict[str, Any]) -> str:
    """What an invalid configuration's record notes (`compare`'s dict)."""
    return (
        f"invalid: the output differs from the eager fp32 model's ({data['reason']}); left "
        "out of speed-ups, plots, claims and gates"
    )


def summary(parity: dict[str, Any]) -> str:
    """One line: "rel L2 3.1e-07, max |diff| 2.1e-07, top-1 100%" or the reason it failed."""
    if parity.get("rel_l2") is None:
        return str(parity.get("reason") or "not checked")
    return (
        f"rel L2 {parity['rel_l2']:.2g}, max |diff| {parity['max_abs_diff']:.2g}, "
        f"top-1 {parity['top1_agreement']:.0%}"
    )
