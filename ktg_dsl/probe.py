"""``ktg validate --deep``: build every node's model (and every model a search may choose for
it) on the meta device (no weights are allocated), check that it maps the dataset's input shape
to one logit per class, and that the weights its ``checkpoint:`` names fit it (the same key and
shape matching training does)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .components.data import DatasetInfo
from .errors import KtgRuntimeError, SpecIssue
from .errors import Path as KeyPath
from .graph import GraphReport
from .spec.components import build
from .spec.schema import ModelRef, Spec

if TYPE_CHECKING:
    from torch import nn


def probe_models(spec: Spec, report: GraphReport) -> list[SpecIssue]:
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
    for name in spec.nodes:
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
        model, found = _probe(spec.nodes[name].model, ("nodes", name, "model"), classes, info)
        issues += found
        head = _head_fits(spec, f"node '{name}'", model) if model is not None else []
        issues += head
        if model is not None and not head:
            trained = _as_trained(spec, model)
            issues += _checkpoint_fits(spec, name, trained, classes, name in report.frozen)
        for i, choice in enumerate(spec.search.models.get(name, []) if spec.search else []):
            where = ("search", "models", name, i)
            chosen, found = _probe(choice, where, classes, info)
            issues += found
            if chosen is not None:  # a trial that draws it builds its head the same way
                who = f"node '{name}', search choice '{choice.type}'"
                issues += _head_fits(spec, who, chosen)
    return issues


def _probe(
    ref: ModelRef, where: KeyPath, classes: int, info: DatasetInfo
) -> tuple[nn.Module | None, list[SpecIssue]]:
    """A model (a node's, or a search choice for it) built on the meta device and run on a
    batch of 2, or its issue at ``where``."""
    import torch

    shape = info.input_shape
    assert shape is not None
    try:
        with torch.device("meta"):
            model = build(ref, num_classes=classes, in_channels=shape[0])
            out = model(torch.empty(2, *shape))
    except Exception as exc:  # any failure here is the model's, reported in its place
        message = (
            f"building or running '{ref.type}' on a {tuple(shape)} input failed: "
            f"{type(exc).__name__}: {exc}"
        )
        return None, [SpecIssue(where, message)]
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        message = f"'{ref.type}' returns {got} for a batch of 2, expected (2, {classes})"
        return None, [SpecIssue(where, message, hint="the model must return one logit per class")]
    return model, []


def _head_fits(spec: Spec, who: str, model: nn.Module) -> list[SpecIssue]:
    """A self-supervised node's projector goes where its classifier was: that layer exists.
    ``who``: the node (or its search choice) in words."""
    if spec.self_supervised is None:
        return []
    from .components.models.heads import HeadError, find_classifier

    head = spec.self_supervised.head
    try:
        find_classifier(model, head.classifier)
    except HeadError as exc:
        try:
            last = find_classifier(model, "auto")[0]
            hint = f"name a Linear layer: the model's last is '{last}', which auto picks"
        except HeadError:
            hint = "the projector replaces a Linear classifier: use a model that has one"
        return [SpecIssue(("self_supervised", "head", "classifier"), f"{who}: {exc}", hint=hint)]
    return []


def _as_trained(spec: Spec, model: nn.Module) -> nn.Module:
    """The module a node's checkpoint is loaded into: a self-supervised node's is its encoder
    and projector (``encoder.*``, ``projector.*``), as training builds it."""
    ssl = spec.self_supervised
    if ssl is None:
        return model
    import torch

    from .components.models.heads import with_projector

    with torch.device("meta"):
        return with_projector(model, ssl.head.classifier, ssl.head.hidden, ssl.head.dim)


def _checkpoint_fits(
    spec: Spec, name: str, model: nn.Module, classes: int, frozen: bool
) -> list[SpecIssue]:
    """Load the node's checkpoint into its meta model as training would (the keys and shapes
    must match); what does not fit is an issue at ``checkpoint:``."""
    import torch

    from .engine.program import RuntimeNode
    from .run.checkpoint import load_node_weights

    node = spec.nodes[name]
    if node.checkpoint is None or not Path(node.checkpoint).is_file():
        return []  # none, or missing: the graph checks report that
    runtime = RuntimeNode(name, 0, model, torch.device("meta"), frozen, classes, config=node)
    try:
        with warnings.catch_warnings():  # copying into meta tensors is a no-op: it says so
            warnings.simplefilter("ignore")
            load_node_weights(runtime, Path(node.checkpoint))
    except KtgRuntimeError as exc:
        other_kind = "self-supervised" in str(exc)  # which already says what to do
        hint = None if other_kind else _hint(node)
        return [SpecIssue(("nodes", name, "checkpoint"), str(exc), hint=hint)]
    return []


def _hint(node: Any) -> str:
    return (
        f"name a checkpoint of a '{node.model.type}' with the same arguments, "
        "e.g. the best/<node>.pt of the run that trained it"
    )
