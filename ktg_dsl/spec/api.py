"""load -> schema -> components -> graph: every check, every issue collected, none of it
importing torch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from ..errors import Path, SpecError, SpecIssue, choices_hint
from ..graph import GraphReport, build_graph
from ..registry import load_builtins, load_plugins
from .components import component_issues, data_component_issues
from .loader import SourceMap, load_file, load_text
from .messages import MISSING, issues_from_validation, schema_default
from .overrides import apply_overrides, parse_path, set_path
from .schema import Spec


def spec_default(path: Path) -> Any:
    """The default of a spec key, as plain data (None when it has none)."""
    value = schema_default(Spec, path)
    return None if value is MISSING else value


def parse_data(
    data: Any, source: SourceMap | None = None, overrides: Sequence[str] = ()
) -> tuple[Spec | None, list[SpecIssue]]:
    """Validate plain data against the schema. Returns the spec (or None) and all issues."""
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
        return None, _sorted([source.attach(i) for i in issues])
    spec._source = source
    spec._raw = data
    return spec, [source.attach(i) for i in issues]


def check(spec: Spec) -> tuple[GraphReport | None, list[SpecIssue]]:
    """Component and graph checks of a schema-valid spec."""
    load_builtins()
    issues = component_issues(spec)
    report = build_graph(spec)
    issues.extend(report.issues)
    issues.extend(_search_param_issues(spec))
    source: SourceMap = spec.source or SourceMap("<spec>")
    return report, _sorted([source.attach(i) for i in issues])


def _sorted(issues: list[SpecIssue]) -> list[SpecIssue]:
    """In file order (issues without a line last, stable), duplicates dropped."""
    seen: set[tuple[object, ...]] = set()
    unique = []
    for i in issues:
        key = (i.path, i.message, i.severity)
        if key not in seen:
            seen.add(key)
            unique.append(i)
    return sorted(unique, key=lambda i: (i.line is None, i.line or 0, i.col or 0))


def _search_param_issues(spec: Spec) -> list[SpecIssue]:
    """Each searched number must name a key that takes a number: set it and re-check."""
    if spec.search is None:
        return []
    issues: list[SpecIssue] = []
    for i, p in enumerate(spec.search.params):
        where = ("search", "params", i, "path")
        try:
            path = parse_path(p.path)
            if path[0] == "search":
                raise ValueError("the search section cannot search itself")
            if path[0] == "nodes" and len(path) > 1 and path[1] not in spec.nodes:
                issues.append(
                    SpecIssue(
                        where,
                        f"{p.path!r} names '{path[1]}', which is not a node",
                        hint=choices_hint(str(path[1]), spec.node_names),
                    )
                )
                continue
            probes = [int(v) if p.integer else v for v in (p.low, p.high)]
            datas = [set_path(spec.raw, path, v, spec_default) for v in probes]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            issues.append(SpecIssue(where, f"cannot search {p.path!r}: {exc}"))
            continue
        for value, data in zip(probes, datas, strict=True):  # both ends must be allowed
            try:
                bad = [x for x in component_issues(Spec.model_validate(data)) if x.is_error]
            except ValidationError as exc:
                bad = issues_from_validation(exc, Spec)[:1]
            if bad:
                issues.append(
                    SpecIssue(
                        where, f"{p.path!r} cannot be {value:g}: {bad[0].message}", hint=bad[0].hint
                    )
                )
                break
    return issues


def inspect_file(
    path: str | FsPath, overrides: Sequence[str] = ()
) -> tuple[Spec | None, GraphReport | None, list[SpecIssue]]:
    """Everything ``ktg validate`` reports about a file. Raises SpecError only when the file
    cannot be read or parsed at all."""
    loaded = load_file(path)
    return inspect_data(loaded.data, loaded.source, overrides)


def inspect_data(
    data: Any, source: SourceMap | None = None, overrides: Sequence[str] = ()
) -> tuple[Spec | None, GraphReport | None, list[SpecIssue]]:
    """Schema, component and graph checks of plain spec data: the spec (None if its shape
    is wrong), its graph (None if anything is an error before the graph checks) and every
    issue."""
    spec, issues = parse_data(data, source, overrides)
    if spec is None or any(i.is_error for i in issues):
        return spec, None, issues
    report, more = check(spec)
    return spec, report, issues + more


def load_spec(
    path: str | FsPath, overrides: Sequence[str] | None = None, plugins: Sequence[str] = ()
) -> Spec:
    """Load and check a spec file. Raises :class:`SpecError` with every issue if any is an
    error; warnings alone do not stop it (see :func:`validate_spec`)."""
    if plugins:
        load_plugins(plugins)
    spec, _, issues = inspect_file(path, overrides or ())
    if spec is None or any(i.is_error for i in issues):
        raise SpecError(issues)
    return spec


def loads_spec(text: str, fmt: str = "yaml", overrides: Sequence[str] = ()) -> Spec:
    """:func:`load_spec` for a spec held in a string."""
    loaded = load_text(text, "<string>", fmt=fmt)
    spec, _, issues = inspect_data(loaded.data, loaded.source, overrides)
    if spec is None or any(i.is_error for i in issues):
        raise SpecError(issues)
    return spec


def validate_spec(spec: Spec) -> list[SpecIssue]:
    """Every issue (errors and warnings) of a schema-valid spec."""
    return check(spec)[1]
