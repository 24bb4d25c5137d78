"""The one driver of every spec check: load -> schema -> component references -> graph ->
search section. Every stage collects issues instead of stopping at the first one, so a user
fixes everything in one round; nothing here imports torch.

    report = check_file("spec.yaml", overrides=["train.epochs=3"])
    report.spec, report.graph, report.issues      # graph is None when an earlier stage failed
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from .check_search import check_search, check_search_values
from .errors import SpecError, SpecIssue
from .graph import GraphReport, link
from .registry import load_builtins, load_plugins
from .spec.components import component_issues, data_component_issues
from .spec.loader import SourceMap, load_file, load_text
from .spec.messages import issues_from_validation
from .spec.overrides import apply_overrides, spec_default
from .spec.schema import Spec


@dataclass(frozen=True)
class CheckReport:
    """What the checks found: the spec (None when its shape is wrong), its linked graph (None
    when anything before the graph checks is an error) and every issue, in file order."""

    spec: Spec | None
    graph: GraphReport | None
    issues: list[SpecIssue]

    @property
    def errors(self) -> list[SpecIssue]:
        return [i for i in self.issues if i.is_error]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed): the spec can be compiled."""
        return self.spec is not None and self.graph is not None and not self.errors


def parse_data(
    data: Any, source: SourceMap | None = None, overrides: Sequence[str] = ()
) -> tuple[Spec | None, list[SpecIssue]]:
    """Validate plain data against the schema (overrides applied first): the spec (or None)
    and every issue of this stage."""
    load_builtins()
    source = source or SourceMap("<spec>")
    issues: list[SpecIssue] = []
    if overrides:
        data, origins, bad = apply_overrides(data, list(overrides), spec_default)
        source.origins.update(origins)
        issues.extend(bad)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        issues.extend(issues_from_validation(exc, Spec))
        issues.extend(data_component_issues(data))
        return None, _in_file_order([source.attach(i) for i in issues])
    spec._source = source
    spec._raw = data
    return spec, [source.attach(i) for i in issues]


def check_spec(spec: Spec) -> CheckReport:
    """Component, graph and search checks of a schema-valid spec."""
    load_builtins()
    graph = link(spec)
    issues = component_issues(spec) + graph.issues + check_search(spec)
    graph_ok = not any(i.is_error for i in graph.issues)
    issues += check_search_values(spec, graph_ok) + _deprecated(spec) + _fp16_device(spec)
    source: SourceMap = spec.source or SourceMap("<spec>")
    return CheckReport(spec, graph, _in_file_order([source.attach(i) for i in issues]))


def _deprecated(spec: Spec) -> list[SpecIssue]:
    if spec.train.log_every is None:
        return []
    return [
        SpecIssue(
            ("train", "log_every"),
            "no longer used: the progress bar moves every step and refreshes its numbers "
            "about twice a second",
            severity="warning",
            hint="remove it",
        )
    ]


def _fp16_device(spec: Spec) -> list[SpecIssue]:
    """fp16 trains with a GradScaler on CUDA only: an error on ``device: cpu``, a warning on
    ``auto`` (a machine without a GPU picks the CPU, and training would stop at the start)."""
    train = spec.train
    if train.precision != "fp16" or train.device.startswith("cuda"):
        return []
    if train.device == "cpu":
        return [
            SpecIssue(
                ("train", "precision"),
                "fp16 needs a CUDA GPU, and train.device is cpu",
                hint="use bf16 or fp32 on the CPU, or precision: auto",
            )
        ]
    return [
        SpecIssue(
            ("train", "precision"),
            "fp16 needs a CUDA GPU: on a machine without one (train.device: auto picks the "
            "CPU) training stops at the start",
            severity="warning",
            hint="set train.device: cuda if the spec is meant for a GPU, or use precision: auto",
        )
    ]


def check_data(
    data: Any, source: SourceMap | None = None, overrides: Sequence[str] = ()
) -> CheckReport:
    """Every check of plain spec data; the graph stage runs only on a spec without errors."""
    spec, issues = parse_data(data, source, overrides)
    if spec is None or any(i.is_error for i in issues):
        return CheckReport(spec, None, issues)
    later = check_spec(spec)
    return CheckReport(spec, later.graph, issues + later.issues)


def check_file(path: str | FsPath, overrides: Sequence[str] = ()) -> CheckReport:
    """Everything ``ktg validate`` reports about a file. Raises SpecError only when the file
    cannot be read or parsed at all."""
    loaded = load_file(path)
    return check_data(loaded.data, loaded.source, overrides)


def _in_file_order(issues: list[SpecIssue]) -> list[SpecIssue]:
    """In file order (issues without a line last, stable), duplicates dropped."""
    seen: set[tuple[object, ...]] = set()
    unique = []
    for i in issues:
        key = (i.path, i.message, i.severity)
        if key not in seen:
            seen.add(key)
            unique.append(i)
    return sorted(unique, key=lambda i: (i.line is None, i.line or 0, i.col or 0))


# --------------------------------------------------------------------------- public API


def load_spec(
    path: str | FsPath, overrides: Sequence[str] | None = None, plugins: Sequence[str] = ()
) -> Spec:
    """Load and check a spec file. Raises :class:`SpecError` with every issue if any is an
    error; warnings alone do not stop it (see :func:`validate_spec`)."""
    if plugins:
        load_plugins(plugins)
    report = check_file(path, overrides or ())
    if report.spec is None or report.errors:
        raise SpecError(report.issues)
    return report.spec


def loads_spec(text: str, fmt: str = "yaml", overrides: Sequence[str] = ()) -> Spec:
    """:func:`load_spec` for a spec held in a string."""
    loaded = load_text(text, "<string>", fmt=fmt)
    report = check_data(loaded.data, loaded.source, overrides)
    if report.spec is None or report.errors:
        raise SpecError(report.issues)
    return report.spec


def validate_spec(spec: Spec) -> list[SpecIssue]:
    """Every issue (errors and warnings) of a schema-valid spec."""
    return check_spec(spec).issues
