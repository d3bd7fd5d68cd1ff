"""The four counting backends, as a table: name -> fn(model, x) -> (total, conv+linear MACs, skipped).

`total` is in the backend's own unit (MACs for conv/fvcore/thop, flops = 2 x MACs for torch); the
second value is always in MACs; `skipped` maps an op or module type to its occurrences. Each backend
runs in eval mode under no_grad, restores every training flag and removes its hooks; thop works on a
deep copy. Facts behind each rule: fvcore's and thop's own documented conventions.
"""

from __future__ import annotations

import contextlib
import copy
from collections import Counter
from collections.abc import Callable, Iterator
from math import prod
from typing import TYPE_CHECKING, Any

from rexbench.measure.backends.quiet import quiet

if TYPE_CHECKING:
    import torch
    from torch import nn


# --- the conv + linear rule, shared by the hook counter and the per-module breakdown --------------


def is_conv_or_linear(module: nn.Module) -> bool:
    from torch import nn
    from torch.nn.modules.conv import _ConvNd

    return isinstance(module, (_ConvNd, nn.Linear))


def layer_macs(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> int:
    """Multiply-adds of one Conv (any dim, grouped, transposed) or Linear call, bias excluded.

    Conv: out_elements x (in_channels / groups) x prod(kernel); transposed conv: in_elements x
    (out_channels / groups) x prod(kernel). Linear: out_elements x in_features.
    """
    from torch import nn

    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    kernel = prod(module.kernel_size)
    if module.transposed:
        return inputs[0].numel() * (module.out_channels // module.groups) * kernel
    return output.numel() * (module.in_channels // module.groups) * kernel


def _own_params_outside_convention(module: nn.Module) -> bool:
    """A module holding weights directly whose arithmetic the conv+linear rule does not see."""
    from torch import nn
    from torch.nn.modules.batchnorm import _NormBase

    if is_conv_or_linear(module):
        return False
    excluded = (_NormBase, nn.LayerNorm, nn.GroupNorm, nn.PReLU, nn.Embedding)
    if isinstance(module, excluded):  # outside the convention by definition, not missed
        return False
    return any(True for _ in module.parameters(recurse=False))


@contextlib.contextmanager
def hooked(model: nn.Module, hook: Callable[[str, nn.Module, tuple, Any], None]) -> Iterator[None]:
    """`hook(name, module, inputs, output)` on every module's forward, removed afterwards."""
    handles = []
    try:
        for name, module in model.named_modules():
            handles.append(
                module.register_forward_hook(
                    lambda mod, inp, out, _name=name: hook(_name, mod, inp, out)
                )
            )
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and no_grad for the duration; every module's training flag restored afterwards."""
    import torch

    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            yield
    finally:
        for module, training in flags:
            module.training = training


# --- the four backends: each returns (total, conv+linear MACs seen, skipped) ------------------------


def _count_conv(model: nn.Module, x: torch.Tensor) -> tuple[int, int, dict[str, int]]:
    total = 0
    skipped: Counter[str] = Counter()

    def hook(_name: str, module: nn.Module, inputs: tuple, output: Any) -> None:
        nonlocal total
        if is_conv_or_linear(module):
            total += layer_macs(module, inputs, output)
        elif _own_params_outside_convention(module):
            skipped[type(module).__name__] += 1

    with evaluating(model), hooked(model, hook):
        model(x)
    return total, total, dict(skipped)


_FVCORE_CONV_LINEAR = ("conv", "linear", "addmm", "mm")  # by_operator() keys of Conv / Linear


def _count_fvcore(model: nn.Module, x: torch.Tensor) -> tuple[int, int, dict[str, int]]:
    with quiet():
        from fvcore.nn import FlopCountAnalysis

        with evaluating(model):
            analysis = FlopCountAnalysis(model, (x,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            total = analysis.total()
            by_op = analysis.by_operator()
            skipped = dict(analysis.unsupported_ops())
    seen = sum(by_op.get(key, 0) for key in _FVCORE_CONV_LINEAR)
    return _exact(total, "fvcore"), _exact(seen, "fvcore"), skipped


def _count_thop(model: nn.Module, x: torch.Tensor) -> tuple[int, int, dict[str, int]]:
    with quiet():
        import thop
        from thop.profile import register_hooks
        from thop.vision.basic_hooks import count_convNd, count_linear

        seen = 0

        def recording(rule: Callable) -> Callable:
            def rule_and_record(module: nn.Module, inputs: tuple, output: Any) -> None:
                nonlocal seen
                before = float(module.total_ops.item())
                rule(module, inputs, output)
                seen += float(module.total_ops.item()) - before

            return rule_and_record

        # thop's own rules for conv and linear, wrapped to record what they add
        custom = {
            kind: recording(rule)
            for kind, rule in register_hooks.items()
            if rule in (count_convNd, count_linear)
        }
        duplicate = copy.deepcopy(model)  # thop adds and removes buffers on what it profiles
        with evaluating(duplicate):
            total, _params = thop.profile(duplicate, inputs=(x,), custom_ops=custom, verbose=False)
    skipped: Counter[str] = Counter()
    for module in duplicate.modules():
        has_rule = type(module) in register_hooks
        is_leaf = next(module.children(), None) is None
        if not has_rule and (is_leaf or any(True for _ in module.parameters(recurse=False))):
            skipped[type(module).__name__] += 1
    return _exact(total, "thop"), _exact(seen, "thop"), dict(skipped)


def _count_torch(model: nn.Module, x: torch.Tensor) -> tuple[int, int, dict[str, int]]:
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    seen_ops: Counter[Any] = Counter()

    class _Recorder(TorchDispatchMode):
        """Records every op that reaches the kernels (after FlopCounterMode's decompositions)."""

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen_ops[func] += 1
            return func(*args, **(kwargs or {}))

    counter = FlopCounterMode(display=False)
    with evaluating(model), _Recorder(), counter:
        model(x)
    flops = counter.get_flop_counts().get("Global", {})
    conv_linear = sum(v for op, v in flops.items() if _torch_conv_or_linear(op))
    skipped: Counter[str] = Counter()
    for func, n in seen_ops.items():
        if func.overloadpacket not in counter.flop_registry and not _no_arithmetic(func):
            skipped[str(func.overloadpacket)] += n
    return counter.get_total_flops(), conv_linear // 2, dict(skipped)


def _torch_conv_or_linear(packet: Any) -> bool:
    """Convolution ops, and the addmm / mm that an nn.Linear decomposes into."""
    name = str(packet)
    return "convolution" in name and "backward" not in name or name in ("aten.addmm", "aten.mm")


_NO_ARITHMETIC = {
    "aten.clone",
    "aten.copy_",
    "aten._to_copy",
    "aten.empty",
    "aten.detach",
    "aten.cat",
    "aten.stack",
    "aten.constant_pad_nd",
}


def _no_arithmetic(func: Any) -> bool:
    """Views, copies, concatenation and padding: ops that only move or alias data."""
    return bool(getattr(func, "is_view", False)) or str(func.overloadpacket) in _NO_ARITHMETIC


def _exact(value: float, counter: str) -> int:
    rounded = round(float(value))
    if abs(float(value) - rounded) > 1e-6 * max(1.0, abs(float(value))):
        raise ValueError(f"{counter} returned a non-integral count {value!r}")
    return int(rounded)


BACKENDS: dict[str, Callable[[Any, Any], tuple[int, int, dict[str, int]]]] = {
    "conv": _count_conv,
    "fvcore": _count_fvcore,
    "thop": _count_thop,
    "torch": _count_torch,
}
