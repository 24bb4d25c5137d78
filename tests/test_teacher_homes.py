"""Where a frozen teacher read by several graph groups runs: one group (its home) runs it and
ships its logits to the others, unless several groups read its taps or its forward costs less
than the bytes it would ship; a teacher read by one group runs there."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ktg_dsl.graph import link
from ktg_dsl.run import distributed
from ktg_dsl.run.distributed import plan_mesh

from .test_distributed_engine import EDGES, make_spec

PLACEMENT = {"a": 0, "b": 1, "c": 1}
T = 3  # the teacher's node index (a, b, c, t)


def homes(edges: list[dict[str, Any]], placement: dict[str, int] = PLACEMENT) -> dict[int, int]:
    spec = make_spec(copy.deepcopy(edges), distributed={"placement": placement})
    return plan_mesh(spec, link(spec), 0, 2).homes


def test_a_teacher_read_by_two_groups_runs_on_the_group_that_reads_its_taps() -> None:
    # t's logits go to a (group 0) and b (group 1), its tap f2 to c (group 1)
    assert homes(EDGES) == {T: 1}


def test_without_taps_the_least_loaded_reader_is_home() -> None:
    logits_only = [e for e in EDGES if e["from"] != "t.f2"]
    # group 0 holds a (width 4); group 1 holds b (width 4) and c (width 8): group 0 is lighter
    assert homes(logits_only) == {T: 0}


def test_a_teacher_read_by_one_group_runs_there() -> None:
    one_group = [e for e in EDGES if not (e["to"] == "a" and e["from"] == "t")]
    assert homes(one_group) == {}


def test_a_teacher_whose_taps_two_groups_read_runs_on_both() -> None:
    both = [*EDGES, {"to": "a.f2", "from": "t.f2", "loss": "attention"}]
    assert homes(both) == {}


def test_a_teacher_too_cheap_to_ship_runs_on_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "SHIP_FLOPS_PER_BYTE", 1e12)
    assert homes(EDGES) == {}


def test_one_group_ships_nothing() -> None:
    spec = make_spec(copy.deepcopy(EDGES))
    assert plan_mesh(spec, link(spec), 0, 1).homes == {}
