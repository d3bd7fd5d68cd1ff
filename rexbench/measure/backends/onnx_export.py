"""A PyTorch module as a serialised ONNX model, for the backends that run ONNX (ONNX Runtime).

Tried in order: the TorchScript-based exporter at ONNX_OPSET (what most deployments still use), then
the torch.export-based ("dynamo") one, which torch makes the default from 2.9 on. What was used
(exporter, opset, the first one's error) goes into the record. torch is imported inside the functions.
"""

from __future__ import annotations

import io
import re
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends.base import timed
from rexbench.measure.backends.quiet import quiet

#: The opset of the TorchScript-based exporter: the newest it supports fully on torch >= 2.1.
ONNX_OPSET = 17
EXPORTERS = ("legacy", "dynamo")


def export_onnx(module: Any, example: Any) -> tuple[bytes, dict[str, Any]]:
    """The module as a serialised ONNX model: the TorchScript-based exporter at ONNX_OPSET, else
    the torch.export-based one. Returns (bytes, {exporter, opset, export_s, failed}); RexbenchError
    with each exporter's first error line when none works."""
    failed: list[str] = []
    for exporter in EXPORTERS:
        try:
            with quiet():
                (blob, opset), seconds = timed(lambda e=exporter: _export(module, example, e))
        except Exception as exc:  # an operator without an ONNX translation, an untraced forward
            failed.append(f"{exporter} exporter: {_first_line(exc)}")
            continue
        return blob, {"exporter": exporter, "opset": opset, "export_s": seconds, "failed": failed}
    raise RexbenchError("ONNX export failed: " + "; ".join(failed))


def _export(module: Any, example: Any, exporter: str) -> tuple[bytes, int | None]:
    import torch

    if exporter == "legacy":
        buffer = io.BytesIO()
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["output"],
        )
        return buffer.getvalue(), ONNX_OPSET
    program = torch.onnx.export(module, (example,), dynamo=True, verbose=False)
    proto = program.model_proto
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return proto.SerializeToString(), opset


def _first_line(exc: BaseException, limit: int = 240) -> str:
    """`Type: first line` of the innermost cause (where exporters name the operator), without
    terminal colour codes, at most `limit` characters."""
    while exc.__cause__ is not None and str(exc.__cause__).strip():
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    first = text.splitlines()[0] if text else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
