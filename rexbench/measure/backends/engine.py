"""Backends that build an engine of their own from the PyTorch module (ONNX Runtime from its ONNX
export, OpenVINO by converting it): what they share. The engine gets an eval-mode copy of the model
on the device and in the dtype it takes, and the seeded input; its build and its first call are
timed (compile_s is both: export or conversion, session or compilation, first call). torch is
imported inside the functions.
"""

from __future__ import annotations

import copy
import functools
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from rexbench.measure.backends.base import Backend, PreparedModel, describe_input, fp32_array, timed
from rexbench.measure.backends.inputs import make_input, torch_dtype

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from rexbench.measure.backends.calibration import Calibration
    from rexbench.measure.config import RunConfig


@dataclass
class Engine:
    """What a backend built: `runner(input)` is one inference; `read` turns its output into an fp32
    NumPy array; `info` is what the record's runtime entry adds (exporter, hints, setup times...)."""

    runner: Callable[[Any], Any]
    input: Any
    info: dict[str, Any]
    read: Callable[[Any], Any] = fp32_array
    feed: Callable[[Any], Any] | None = None  # an fp32 NCHW array -> what `runner` takes

    def __post_init__(self) -> None:
        if self.feed is None:  # a host array like the input (an fp16 engine takes fp16)
            self.feed = functools.partial(host_array, dtype=self.input.dtype)


class EngineBackend(Backend):
    """A Backend whose `build` turns the prepared module and example input into an Engine."""

    #: True: the engine takes the fp32 graph and runs the run's dtype as a precision hint
    #: (OpenVINO); False: the module is cast to the run's dtype before the engine sees it.
    fp32_graph: ClassVar[bool] = False
    prepared_again_cheaply = True  # their graphs go to the cache of built graphs (artifacts.py)

    @abstractmethod
    def build(
        self,
        module: nn.Module,
        x: Any,
        config: RunConfig,
        threads: int,
        *,
        calibration: Calibration | None = None,
    ) -> Engine:
        """The engine for `module` (eval, on config.device, in the dtype it takes) and input `x`,
        with `threads` threads (the number in force, as for PyTorch) and config.dtype's precision;
        quantized to int8 on `calibration`'s inputs where the backend `calibrates` the config."""

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

        run = replace(config, device=device)
        on = replace(run, dtype="fp32") if self.fp32_graph else run
        module = (model if in_place else copy.deepcopy(model)).eval()
        module = module.to(device=device, dtype=torch_dtype(on.dtype))
        x = make_input(on, default_resolution, input_shape=input_shape)
        start = time.perf_counter()
        threads = torch.get_num_threads()
        engine = self.build(module, x, run, threads, calibration=calibration)
        setup_s = time.perf_counter() - start
        prepared = PreparedModel(
            module=engine.runner,
            input=engine.input,
            config=config,
            device=device,
            resolution=int(x.shape[-2]),
            read=engine.read,
            input_info=describe_input(x),
            feed=engine.feed,
        )
        _, first = timed(prepared.run)
        prepared.runtime = self.record(
            config, setup_s, precision=self.precision(config), **engine.info, first_call_s=first
        )
        prepared.compile_s = setup_s + first
        return prepared


def host_array(batch: np.ndarray, dtype: Any) -> np.ndarray:
    """An fp32 NCHW array as a C-contiguous host array of the engine's input dtype."""
    import numpy as np

    return np.ascontiguousarray(batch, dtype=dtype)
