"""What feature edges cost, measured by ``ktg bench`` on a spec that has them: the engine on the
whole graph, on the same graph without its feature edges (its taps still declared, read by no
edge), and without taps at all. The first ratio is the feature edges' cost; the second shows
that a tap no open edge reads costs nothing (no hook is ever registered for it)."""

from __future__ import annotations

import copy
from typing import Any

from ..check import check_data
from ..components.data import DatasetInfo
from ..errors import KtgRuntimeError
from ..graph import split_end
from ..spec.schema import Spec


def has_feature_edges(spec: Spec) -> bool:
    return any("." in e.to or "." in e.from_ for e in spec.edges or [])


def without_features(spec: Spec, keep_taps: bool) -> Spec:
    """The spec with its feature edges dropped (and its taps too, unless ``keep_taps``)."""
    data: dict[str, Any] = copy.deepcopy(spec.raw)
    data["edges"] = [
        e for e in data.get("edges") or [] if not (split_end(e["to"])[1] or split_end(e["from"])[1])
    ]
    if not data["edges"]:
        del data["edges"]
    if not keep_taps:
        for node in data["nodes"].values():
            node.pop("taps", None)
    report = check_data(data)
    if report.spec is None or not report.ok:
        raise KtgRuntimeError(
            "ktg bench could not drop the feature edges: "
            + "; ".join(i.format() for i in report.errors[:3])
        )
    return report.spec


def feature_programs(spec: Spec, info: DatasetInfo, steps_per_epoch: int) -> dict[str, Any]:
    """The two comparison programs, by variant name (empty without feature edges)."""
    if not has_feature_edges(spec):
        return {}
    from ..run.data import compile_spec

    return {
        name: compile_spec(
            without_features(spec, keep), data_info=info, steps_per_epoch=steps_per_epoch
        )
        for name, keep in (("engine(logits edges)", True), ("engine(no taps)", False))
    }


def feature_ratios(images_per_s: dict[str, float], engine: str) -> dict[str, float]:
    """feature edges' cost, and unused taps' cost, as ratios of images/s."""
    if "engine(logits edges)" not in images_per_s:
        return {}
    logits, bare = images_per_s["engine(logits edges)"], images_per_s["engine(no taps)"]
    return {
        "engine_auto/logits_edges_only": round(images_per_s[engine] / logits, 3),
        "unused_taps/no_taps": round(logits / bare, 3),
    }
