"""The backends by name, and the `--config` names (presets) they bring: the one place that knows
them. Registering a name twice is an error; so is an unknown name (with the closest ones).

PyTorch is the default backend: a RunConfig's `runtime` is None for it (the field predates the
other backends, and stored records and their ids say None), the registered name of any other.
Modules of the backends import nothing heavy, so listing names never imports torch.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends.base import TORCH_FIELDS, Backend, parse_options
from rexbench.measure.backends.onnxruntime import OnnxRuntimeBackend
from rexbench.measure.backends.openvino import OpenVinoBackend
from rexbench.measure.backends.pt2e import Pt2eBackend
from rexbench.measure.backends.torch import TorchBackend

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig

DEFAULT_BACKEND = "torch"
DEFAULT_PRESET = "compile_cl"
#: The RunConfig fields a preset fixes; everything else (device, batch, threads, runs...) is orthogonal.
PRESET_FIELDS = (*TORCH_FIELDS, "compile_mode", "runtime", "options")
_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")


class BackendRegistry:
    """Name -> Backend, and preset name -> the RunConfig fields it sets."""

    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}
        self._presets: dict[str, dict[str, Any]] = {}
        self._help: dict[str, str] = {}

    def register(self, backend: Backend) -> Backend:
        """Add a backend and its presets; a name already taken (as a backend or a preset) or not
        of the form [a-z][a-z0-9_]* is refused, and a refused backend leaves no trace."""
        presets = {p.name: p for p in backend.presets()}
        taken = set(self._backends) | set(self._presets)
        for name in dict.fromkeys([backend.name, *presets]):
            if not _NAME_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not a configuration name ([a-z][a-z0-9_]*)")
            if name in taken:
                raise ValueError(f"{name!r} is already registered")
        runtime = None if backend.name == DEFAULT_BACKEND else backend.name
        for preset in presets.values():
            fields: dict[str, Any] = {"runtime": runtime, "compile_mode": "default"}
            if not backend.torch_preparation:
                fields.update(dict.fromkeys(TORCH_FIELDS, False))
            fields.update(preset.fields)
            fields["options"] = backend.check_options(dict(fields.get("options", {})))
            self._presets[preset.name] = fields
            self._help[preset.name] = preset.help
        self._backends[backend.name] = backend
        return backend

    def unregister(self, name: str) -> None:
        """Remove a backend and its presets (tests register their own and clean up)."""
        backend = self._backends.pop(name)
        for preset in backend.presets():
            self._presets.pop(preset.name, None)
            self._help.pop(preset.name, None)

    def names(self) -> list[str]:
        return list(self._backends)

    def presets(self) -> list[str]:
        return list(self._presets)

    def get(self, runtime: str | None) -> Backend:
        """The backend a RunConfig's `runtime` names (None: PyTorch)."""
        name = DEFAULT_BACKEND if runtime is None else runtime
        if name not in self._backends:
            raise RexbenchError(
                f"unknown runtime {name!r}{_hint(name, self.names())}; "
                f"choose one of {', '.join(self.names())}"
            )
        return self._backends[name]

    def check_available(self, runtime: str | None, device: str) -> None:
        """One line, naming what to install, when the backend cannot run on `device` here."""
        reason = self.get(runtime).available(device)
        if reason is not None:
            raise RexbenchError(reason)

    def preset_fields(self, text: str) -> dict[str, Any]:
        """The RunConfig fields `--config TEXT` names: a preset, `NAME`, or a preset with options of
        its backend set, `NAME:KEY=VALUE[:KEY=VALUE...]` (a configuration's label reads the same)."""
        name, _, given = text.partition(":")
        if name not in self._presets:
            raise RexbenchError(
                f"unknown configuration {name!r}{_hint(name, self.presets())}; "
                f"choose from {', '.join(self.presets())}"
            )
        fields = dict(self._presets[name])
        if given:
            options = dict(fields["options"]) | parse_options(text, given)
            fields["options"] = self.get(fields["runtime"]).check_options(options)
        return fields

    def preset_of(self, config: RunConfig) -> str | None:
        """The preset whose fields `config` has, or None."""
        mine = {f: getattr(config, f) for f in PRESET_FIELDS}
        if not config.compile:
            mine["compile_mode"] = "default"  # meaningless without compile
        return next((name for name, fields in self._presets.items() if fields == mine), None)

    def label(self, config: RunConfig) -> str:
        """The configuration's name without its dtype: its preset, else what its backend composes."""
        return self.preset_of(config) or self.get(config.runtime).label(config)

    def help_line(self) -> str:
        """Every preset, with a word on what it is: the `--config` option's help."""
        return ", ".join(
            f"{name} (default)" if name == DEFAULT_PRESET else f"{name} ({text})" if text else name
            for name, text in self._help.items()
        )


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


BACKENDS = BackendRegistry()
for _backend in (TorchBackend(), OnnxRuntimeBackend(), OpenVinoBackend(), Pt2eBackend()):
    BACKENDS.register(_backend)
