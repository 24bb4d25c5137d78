"""``ktg validate --deep`` for feature edges: every tap is resolved on the meta device (an
unknown module path gets a did-you-mean over the model's module names), and every feature
edge's two shapes are checked against its loss before anything trains."""

from __future__ import annotations

from .errors import SpecIssue
from .graph import GraphReport
from .registry import LOSSES
from .spec.components import build
from .spec.schema import Spec

Shapes = dict[str, dict[str, tuple[int, ...]]]


def probe_taps(spec: Spec, report: GraphReport) -> tuple[Shapes, list[SpecIssue]]:
    """The shape of every declared tap (node -> tap -> shape), and the taps that fail."""
    import torch

    from .engine.taps import TapError, module_at, tap_shapes

    info = report.data_info
    shapes: Shapes = {}
    issues: list[SpecIssue] = []
    if info is None or info.input_shape is None:
        return shapes, issues
    for name, node in spec.nodes.items():
        classes = report.class_counts.get(name)
        if not node.taps or classes is None:
            continue
        with torch.device("meta"):
            model = build(node.model, num_classes=classes, in_channels=info.input_shape[0])
        good = {}
        for tap, path in node.taps.items():
            try:
                module_at(model, path)
                good[tap] = path
            except TapError as exc:
                issues.append(SpecIssue(("nodes", name, "taps", tap), str(exc)))
        try:
            shapes[name] = tap_shapes(model, good, info.input_shape)
        except TapError as exc:
            issues.append(SpecIssue(("nodes", name, "taps"), str(exc)))
    return shapes, issues


def probe_feature_edges(spec: Spec, report: GraphReport) -> list[SpecIssue]:
    """Issues of the taps and of every feature edge's shapes (empty when all fit)."""
    shapes, issues = probe_taps(spec, report)
    for e in report.edges:
        if not e.on_features or e.closed or e.receiver_tap is None or e.sender_tap is None:
            continue
        r = shapes.get(e.receiver, {}).get(e.receiver_tap)
        s = shapes.get(e.sender, {}).get(e.sender_tap)
        if r is None or s is None:
            continue  # its tap failed, reported above
        loss = LOSSES.get(e.loss_ref.type).build(e.loss_ref.args)
        check = getattr(loss, "check_shapes", None)
        problem = check(r, s) if check is not None else None
        if problem:
            issues.append(SpecIssue(e.path, f"edge {e.sender_end} -> {e.receiver_end}: {problem}"))
    return issues
