"""``ktg export``: one trained node (a self-describing node file, ``best/<node>.pt``) as an ONNX
or TorchScript file for deployment, checked on export against the PyTorch model.

The exported model takes normalised images ``[N, C, H, W]`` (float32, any batch size) and
returns logits ``[N, classes]``; the preprocessing (divide uint8 pixels by ``scale``, then
``(x - mean) / std``) and the class names are in the node file and, for ONNX, in the model's
metadata (``ktg.classes``, ``ktg.mean``, ``ktg.std``, ``ktg.scale``, JSON text).

The check feeds ``CHECK_BATCH`` seeded random inputs to both and requires
``|exported - pytorch| <= ATOL + RTOL * |pytorch|`` everywhere (``torch.allclose``'s rule).
An ONNX file is checked with onnxruntime, an optional extra (``pip install 'ktg-dsl[export]'``);
without it the file is written and the check is reported as not done.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..atomic import write_bytes_atomic
from ..errors import KtgRuntimeError
from .trained import TrainedNode

FORMATS = ("onnx", "torchscript")
ATOL, RTOL = 1e-4, 1e-3
CHECK_BATCH = 4
OPSET = 18  # what the exporter writes; onnxruntime 1.18+ runs it


@dataclass(frozen=True)
class ExportReport:
    path: Path
    format: str
    checked: bool  # False: onnxruntime is not installed
    max_abs_diff: float | None


def export_node(node: TrainedNode, fmt: str, out: Path) -> ExportReport:
    """Write ``node`` to ``out`` as ``fmt`` (see the module) and check it."""
    if fmt not in FORMATS:
        raise KtgRuntimeError(f"unknown export format '{fmt}'; one of: {', '.join(FORMATS)}")
    model = node.model.eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(CHECK_BATCH, *node.input_shape, generator=generator)
    with torch.no_grad():
        expected = model(x).float()
    if fmt == "torchscript":
        data = _torchscript(model, x)
        got: Tensor | None = _run_torchscript(data, x)
    else:
        data = _onnx(node, x)
        got = _run_onnx(data, x)
    diff = None if got is None else float((got - expected).abs().max())
    if got is not None and not torch.allclose(got, expected, atol=ATOL, rtol=RTOL):
        raise KtgRuntimeError(
            f"the exported {fmt} model of node '{node.name}' differs from the PyTorch model by "
            f"up to {diff:.3g} (allowed: {ATOL:g} + {RTOL:g} x |output|); nothing was written"
        )
    write_bytes_atomic(out, data)
    return ExportReport(out, fmt, got is not None, diff)


def _torchscript(model: torch.nn.Module, x: Tensor) -> bytes:
    """The traced model (for inputs of the node's shape: a shape test in ``forward`` is
    fixed at that shape). torch.jit warns that it is deprecated; it still is the format
    C++ and mobile runtimes load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(model, x, check_trace=False)
        except Exception as exc:  # tracing fails in many ways on models it cannot follow
            raise KtgRuntimeError(f"TorchScript cannot trace this model: {exc}") from None
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _run_torchscript(data: bytes, x: Tensor) -> Tensor:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        out: Tensor = torch.jit.load(io.BytesIO(data))(x).float()
    return out


def _onnx(node: TrainedNode, x: Tensor) -> bytes:
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxscript") is None:
        raise KtgRuntimeError(
            "ONNX export needs the onnx package: pip install 'ktg-dsl[export]' (onnx, "
            "onnxruntime, onnxscript)"
        )
    import onnx

    with tempfile.TemporaryDirectory(prefix="ktg-export-") as folder:
        file = Path(folder) / "model.onnx"
        batch = torch.export.Dim("batch", min=1)
        try:  # torch.export's exporter (onnxscript); it reports its steps on stdout
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(
                    node.model,
                    (x,),
                    input_names=["images"],
                    output_names=["logits"],
                    dynamic_shapes=({0: batch},),
                    opset_version=OPSET,
                    dynamo=True,
                    verbose=False,
                )
                assert program is not None
                program.save(str(file))
        except Exception as exc:  # the exporter's own errors: unsupported operators, ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KtgRuntimeError(f"ONNX export of node '{node.name}' failed: {first}") from None
        proto = onnx.load(str(file))
    facts = {"classes": node.classes, "mean": node.mean, "std": node.std, "scale": node.scale}
    for key, value in facts.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"ktg.{key}", json.dumps(value)
    return bytes(proto.SerializeToString())


def _run_onnx(data: bytes, x: Tensor) -> Tensor | None:
    """The ONNX model's output on ``x`` (onnxruntime, CPU); None when it is not installed."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    (out,) = session.run(["logits"], {"images": x.numpy()})
    return torch.from_numpy(out).float()
