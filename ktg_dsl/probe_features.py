"""``ktg validate --deep`` for feature edges: every tap is resolved on the meta device (an
unknown module path gets a did-you-mean over the model's module names), and every feature
edge's two shapes are checked against its loss before anything trains. A node with taps whose
model ``search.models`` may replace is checked with each model choice too: a trial that samples
a model without the tapped module would fail."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .errors import Path, SpecIssue
from .graph import GraphReport
from .spec.components import build
from .spec.schema import ModelRef, Spec

Shapes = dict[str, dict[str, tuple[int, ...]]]


@dataclass(frozen=True)
class _Variant:
    """A node's taps' shapes with one of its models: the spec's (``where`` None) or the search
    choice at ``where``."""

    model: ModelRef
    where: Path | None
    shapes: dict[str, tuple[int, ...]]


def _models(spec: Spec, name: str) -> list[tuple[ModelRef, Path | None]]:
    choices = spec.search.models.get(name, []) if spec.search is not None else []
    return [(spec.nodes[name].model, None)] + [
        (m, ("search", "models", name, j)) for j, m in enumerate(choices)
    ]


def _probe_variants(
    spec: Spec, report: GraphReport
) -> tuple[dict[str, list[_Variant]], list[SpecIssue]]:
    import torch

    from .engine.taps import TapError, module_at, tap_shapes

    info = report.data_info
    variants: dict[str, list[_Variant]] = {}
    issues: list[SpecIssue] = []
    if info is None or info.input_shape is None:
        return variants, issues
    for name, node in spec.nodes.items():
        classes = report.class_counts.get(name)
        if not node.taps or classes is None:
            continue
        for model_ref, where in _models(spec, name):
            choice = f"with the model choice '{model_ref.type}', " if where else ""
            try:
                with torch.device("meta"):
                    model = build(model_ref, num_classes=classes, in_channels=info.input_shape[0])
            except Exception:  # the model's own failure is reported by probe.py
                continue
            good = {}
            for tap, path in node.taps.items():
                try:
                    module_at(model, path)
                    good[tap] = path
                except TapError as exc:
                    at = where if where is not None else ("nodes", name, "taps", tap)
                    text = f"{choice}nodes.{name}.taps.{tap}: {exc}" if where else str(exc)
                    issues.append(SpecIssue(at, text))
            try:
                shapes = tap_shapes(model, good, info.input_shape)
            except TapError as exc:
                at = where if where is not None else ("nodes", name, "taps")
                issues.append(SpecIssue(at, f"{choice}{exc}"))
                continue
            except Exception:  # a model that cannot run: reported by probe.py
                continue
            variants.setdefault(name, []).append(_Variant(model_ref, where, shapes))
    return variants, issues


def probe_feature_edges(spec: Spec, report: GraphReport) -> list[SpecIssue]:
    """Issues of the taps and of every feature edge's shapes (empty when all fit)."""
    variants, issues = _probe_variants(spec, report)
    reported: set[tuple[int, Path | None]] = set()
    for index, e in enumerate(report.edges):
        if not e.on_features or e.closed or e.receiver_tap is None or e.sender_tap is None:
            continue
        if e.loss is None:
            continue  # reported by the graph stage
        check = e.loss.check_shapes
        pairs = itertools.product(variants.get(e.receiver, []), variants.get(e.sender, []))
        for rv, sv in pairs:
            r, s = rv.shapes.get(e.receiver_tap), sv.shapes.get(e.sender_tap)
            if r is None or s is None:
                continue  # its tap failed, reported above
            problem = check(r, s)
            if not problem:
                continue
            where = rv.where or sv.where  # a search choice, or the spec's own models
            if (index, where) in reported:
                continue
            reported.add((index, where))
            text = f"edge {e.sender_end} -> {e.receiver_end}: {problem}"
            if where is None:
                issues.append(SpecIssue(e.path, text))
            else:
                chosen = [
                    f"'{v.model.type}' for {n}"
                    for v, n in ((rv, e.receiver), (sv, e.sender))
                    if v.where is not None
                ]
                issues.append(
                    SpecIssue(where, f"with the model choice {' and '.join(chosen)}, {text}")
                )
    return issues
