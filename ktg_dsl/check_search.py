"""Checks of a spec's ``search:`` section, run by ``ktg validate`` with the others (torch-free,
Optuna-free): the names it gives are nodes, its choices are not empty, its numeric ranges can
be sampled, and both ends of every range make a valid spec (its graph included)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import ValidationError

from .errors import Path, SpecIssue, choices_hint
from .graph import link, loss_target, loss_views_of
from .registry import GATES, UnknownComponentError
from .spec.components import component_issues
from .spec.messages import issues_from_validation
from .spec.overrides import parse_path, set_path, spec_default
from .spec.schema import (
    LABELS,
    ComponentRef,
    EdgeChoice,
    GateRef,
    NumericRange,
    SearchConfig,
    Spec,
)


def check_search(spec: Spec) -> list[SpecIssue]:
    """Every issue of the search section (none without one)."""
    s = spec.search
    if s is None:
        return []
    issues = _names(spec, s)
    issues += _edge_choices(spec, s)
    issues += _repeated(("search", "gates"), s.gates)
    issues += _gates_without_logits(spec, s)
    for i, e in enumerate(s.edges):
        issues += _repeated(("search", "edges", i, "gates"), e.gates or [])
        issues += _repeated(("search", "edges", i, "losses"), e.losses or [])
    for name, models in s.models.items():
        issues += _repeated(("search", "models", name), models)
    for i, p in enumerate(s.params):
        issues += _range(s, i, p)
    return issues


def _repeated(where: Path, choices: Sequence[ComponentRef]) -> list[SpecIssue]:
    """A choice listed twice: the sampler would draw it more often than the others."""
    first: dict[str, int] = {}
    issues = []
    for i, ref in enumerate(choices):
        key = json.dumps([ref.type, ref.args], sort_keys=True, default=str)
        if key in first:
            issues.append(
                SpecIssue(
                    (*where, i),
                    f"the choice '{ref.type}' is listed twice (first at [{first[key]}])",
                    hint="list each choice once: a repeated one would be sampled more often",
                )
            )
        first.setdefault(key, i)
    return issues


def check_search_values(spec: Spec, graph_ok: bool = False) -> list[SpecIssue]:
    """Each searched number must name a key that takes a number: both ends of its range are
    set in the spec and checked like a value written there; with ``graph_ok`` (the spec's own
    graph has no error) also by the graph checks, so that a range no trial could train at one
    end (a kNN k above the memory bank, a batch above the training part, warm-up epochs
    beyond the run) is refused before the search starts, not trial by trial."""
    if spec.search is None:
        return []
    issues: list[SpecIssue] = []
    for i, p in enumerate(spec.search.params):
        issues += _range_ends(spec, i, p, graph_ok)
    return issues


def _names(spec: Spec, s: SearchConfig) -> list[SpecIssue]:
    names = spec.node_names
    issues = []
    node = s.objective.node
    if node is not None and node not in spec.nodes:
        issues.append(
            SpecIssue(
                ("search", "objective", "node"),
                f"the objective names '{node}', which is not a node",
                hint=choices_hint(node, names),
            )
        )
    for name in s.models:
        if name not in spec.nodes:
            issues.append(
                SpecIssue(
                    ("search", "models", name),
                    f"model choices for '{name}', which is not a node",
                    hint=choices_hint(name, names),
                )
            )
    return issues


def _edge_choices(spec: Spec, s: SearchConfig) -> list[SpecIssue]:
    names = spec.node_names
    issues: list[SpecIssue] = []
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(s.edges):
        where = ("search", "edges", i)
        tapped = [(k, v) for k, v in (("to", e.to), ("from", e.from_)) if "." in v]
        if tapped:  # not a node the search could mistake: say what search edges are
            key, end = tapped[0]
            issues.append(
                SpecIssue(
                    (*where, key),
                    f"'{end}' names a tap: the search chooses gates and losses of the edges "
                    "between nodes' logits",
                    hint="a feature edge keeps the gate and loss written in 'edges'; name "
                    "the nodes here (to: b, from: a) to search their logits edge",
                )
            )
            continue
        if e.to not in spec.nodes:
            issues.append(
                SpecIssue((*where, "to"), f"'{e.to}' is not a node", choices_hint(e.to, names))
            )
        if e.from_ != LABELS and e.from_ not in spec.nodes:
            issues.append(
                SpecIssue(
                    (*where, "from"),
                    f"'{e.from_}' is not a node",
                    hint=choices_hint(e.from_, [*names, LABELS]),
                )
            )
        if (e.to, e.from_) in seen:
            issues.append(SpecIssue(where, f"duplicate search edge {e.from_} -> {e.to}"))
        seen.add((e.to, e.from_))
        if e.fixed and e.gates:
            issues.append(SpecIssue(where, "an edge is either fixed or has gate choices, not both"))
        issues += _loss_choices(spec, i, e)
        if not e.fixed and e.gates is not None and not e.gates:
            issues.append(
                SpecIssue(
                    (*where, "gates"),
                    "no gate choices",
                    hint="list at least one gate, or write 'fixed: true'",
                )
            )
    if not s.gates:
        issues.append(
            SpecIssue(("search", "gates"), "no gate choices", hint="list at least one gate")
        )
    return issues


def _loss_choices(spec: Spec, i: int, e: EdgeChoice) -> list[SpecIssue]:
    """Each loss choice fits its edge: a labels loss on the labels edge, a loss between
    models' logits on the others."""
    if e.losses is None:
        return []
    where = ("search", "edges", i, "losses")
    if not e.losses:
        return [SpecIssue(where, "no loss choices", hint="list at least one loss, e.g. [kl, dkd]")]
    issues = []
    labels = e.from_ == LABELS
    for j, loss in enumerate(e.losses):
        target = loss_target(loss)
        if spec.self_supervised is not None:  # views losses only, each on its own edges
            fits = target == "views" and loss_views_of(loss) != ("peers" if labels else "self")
            need = (
                "nt_xent (a self-supervised node's self edge contrasts its own two views)"
                if labels
                else "a loss between two nodes' views: similarity_kl or view_mse"
            )
        else:
            fits = target == "labels" if labels else target in ("logits", "outputs")
            need = (
                "a labels loss such as ce"
                if labels
                else "a loss between logits such as kl, dkd, dist or mse"
            )
        if target is not None and not fits:
            issues.append(
                SpecIssue(
                    (*where, j),
                    f"'{loss.type}' cannot be chosen for edge {e.from_} -> {e.to}",
                    hint=f"this edge needs {need}",
                )
            )
    return issues


def _gates_without_logits(spec: Spec, s: SearchConfig) -> list[SpecIssue]:
    """A self-supervised graph has no class logits: a per-sample gate (``correct``) cannot be
    among the choices any trial may draw."""
    if spec.self_supervised is None:
        return []
    lists: list[tuple[Path, list[GateRef]]] = [(("search", "gates"), s.gates)]
    lists += [(("search", "edges", i, "gates"), e.gates or []) for i, e in enumerate(s.edges)]
    issues = []
    for where, gates in lists:
        for j, ref in enumerate(gates):
            try:
                per_sample = GATES.get(ref.type).build(ref.args).per_sample
            except (UnknownComponentError, ValidationError, ValueError, TypeError):
                continue  # the component checks say what is wrong with it
            if per_sample:
                issues.append(
                    SpecIssue(
                        (*where, j),
                        f"gate '{ref.type}' weighs each sample by the sender's class logits; "
                        "a self-supervised graph has none, so no trial can use it",
                        hint="remove it from the choices; gates over time: through, cutoff, "
                        "positive_linear, negative_linear, ...",
                    )
                )
    return issues


def _range(s: SearchConfig, i: int, p: NumericRange) -> list[SpecIssue]:
    where = ("search", "params", i)
    issues = []
    if p.log and p.step is not None:
        issues.append(
            SpecIssue(
                where,
                "a range is either on a log scale or stepped, not both",
                hint="remove 'step' or 'log'",
            )
        )
    if p.integer and any(v is not None and float(v) != int(v) for v in (p.low, p.high, p.step)):
        issues.append(
            SpecIssue(
                where,
                "an integer range needs whole low, high and step",
                hint="e.g. {low: 1, high: 8, step: 1}",
            )
        )
    if s.sampler.type == "bruteforce" and not p.integer and p.step is None:
        issues.append(
            SpecIssue(
                where, "the bruteforce sampler needs a finite space", "give this range a 'step'"
            )
        )
    if p.low >= p.high:
        issues.append(SpecIssue(where, f"low ({p.low:g}) must be below high ({p.high:g})"))
    if p.log and p.low <= 0:
        issues.append(SpecIssue((*where, "low"), "a log range needs low > 0"))
    return issues


def _range_ends(spec: Spec, i: int, p: NumericRange, graph_ok: bool) -> list[SpecIssue]:
    where = ("search", "params", i, "path")
    try:
        path = parse_path(p.path)
        if path[0] == "search":
            raise ValueError("the search section cannot search itself")
        if path[0] == "nodes" and len(path) > 1 and path[1] not in spec.nodes:
            return [
                SpecIssue(
                    where,
                    f"{p.path!r} names '{path[1]}', which is not a node",
                    hint=choices_hint(str(path[1]), spec.node_names),
                )
            ]
        probes = [int(v) if p.integer else v for v in (p.low, p.high)]
        datas = [set_path(spec.raw, path, v, spec_default) for v in probes]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return [SpecIssue(where, f"cannot search {p.path!r}: {exc}")]
    for value, data in zip(probes, datas, strict=True):  # both ends must be allowed
        try:
            end = Spec.model_validate(data)
            end._source, end._raw = spec.source, data  # paths resolve as the spec's own
            bad = [x for x in component_issues(end) if x.is_error]
            if not bad and graph_ok:
                bad = [x for x in link(end).issues if x.is_error]
        except ValidationError as exc:
            bad = issues_from_validation(exc, Spec)[:1]
        if bad:
            return [
                SpecIssue(
                    where, f"{p.path!r} cannot be {value:g}: {bad[0].message}", hint=bad[0].hint
                )
            ]
    return []
