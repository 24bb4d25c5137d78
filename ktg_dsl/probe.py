"""``ktg validate --deep``: build every node's model on the meta device (no weights are
allocated) and check that it maps the dataset's input shape to one logit per class."""

from __future__ import annotations

from .errors import SpecIssue
from .graph import GraphReport
from .spec.components import build
from .spec.schema import Spec


def probe_models(spec: Spec, report: GraphReport) -> list[SpecIssue]:
    import torch

    info = report.data_info
    if info is None or info.input_shape is None:
        return [
            SpecIssue(
                ("data", "dataset"),
                "the input shape is only known once the data is loaded: models not probed",
                severity="warning",
            )
        ]
    issues: list[SpecIssue] = []
    channels = info.input_shape[0]
    for name, node in spec.nodes.items():
        classes = report.class_counts.get(name)
        if classes is None:
            issues.append(
                SpecIssue(
                    ("nodes", name),
                    "class count unknown until the data is loaded: model not probed",
                    severity="warning",
                )
            )
            continue
        where = ("nodes", name, "model")
        try:
            with torch.device("meta"):
                model = build(node.model, num_classes=classes, in_channels=channels)
                out = model(torch.empty(2, *info.input_shape))
        except Exception as exc:  # any failure here is the model's, reported in its place
            issues.append(
                SpecIssue(
                    where,
                    f"building or running '{node.model.type}' on a "
                    f"{tuple(info.input_shape)} input failed: "
                    f"{type(exc).__name__}: {exc}",
                )
            )
            continue
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, classes):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            issues.append(
                SpecIssue(
                    where,
                    f"'{node.model.type}' returns {shape} for a batch of "
                    f"2, expected (2, {classes})",
                    hint="the model must return one logit per class",
                )
            )
    return issues
