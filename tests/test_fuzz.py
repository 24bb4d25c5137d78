"""Property: whatever a spec file holds, loading it raises only SpecError (never a crash)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ktg_dsl
from ktg_dsl import SpecError

from .conftest import ROOT, base_spec

SEEDS = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "specs").glob("*.yaml"))]
SEEDS.append(base_spec())

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "rename"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = parent.pop(path[-1])
    return data


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@pytest.mark.slow
@given(data=mutated_specs())
def test_mutated_specs_only_raise_spec_error(tmp_path: Path, data: Any) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        ktg_dsl.load_spec(path)
    except SpecError as exc:
        assert exc.issues and all(i.message for i in exc.issues)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=st.text(max_size=300))
def test_arbitrary_text_only_raises_spec_error(tmp_path: Path, text: str) -> None:
    for name in ("t.yaml", "t.json"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            ktg_dsl.load_spec(path)
        except SpecError as exc:
            assert exc.issues
