"""A plugin written against the documented contracts (``ktg_dsl.contracts``) works in every
command: its gate, loss and model through validate, render, train and search
(tests/plugins/ktg_minimal_plugin.py subclasses nothing built in). A builder that raises, or
returns what breaks its contract, is a spec issue at the key that names it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ktg_dsl.registry import GATES, LOSSES

from .conftest import small_spec, write_spec

PLUGIN = ("--plugin", "ktg_minimal_plugin")
Cli = Callable[..., tuple[int, str, str]]


def _spec(folder: Path, **top: Any) -> Path:
    nodes = {n: {"model": {"type": "tiny_mlp", "hidden": 8}} for n in ("a", "b")}
    edges = [
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "a", "from": "b", "gate": "halfway", "loss": "l1_logits"},
        {"to": "b", "from": "a", "gate": {"type": "halfway", "level": 0.5}, "loss": "l1_logits"},
    ]
    return write_spec(folder, small_spec("plugged", nodes, edges, epochs=2, **top))


def test_a_plugin_on_the_contracts_validates_and_renders(tmp_path: Path, cli: Cli) -> None:
    spec = _spec(tmp_path)
    code, out, err = cli("validate", spec, *PLUGIN)
    assert code == 0, out + err
    assert "valid: 2 nodes, 4 edges" in out
    code, out, err = cli("render", spec, "-o", tmp_path / "g.dot", *PLUGIN)
    assert code == 0, out + err
    dot = (tmp_path / "g.dot").read_text()
    assert "halfway" in dot and "l1_logits" in dot  # named by the spec: the objects say ''


def test_a_plugin_on_the_contracts_trains(tmp_path: Path, cli: Cli) -> None:
    run = tmp_path / "run"
    code, out, err = cli("train", _spec(tmp_path), "--run-dir", run, "--no-progress", *PLUGIN)
    assert code == 0, out + err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["epoch"] for r in rows if "epoch" in r} >= {0, 1}, rows
    assert (run / "best" / "a.pt").is_file() and (run / "best" / "b.pt").is_file()


def test_a_plugin_on_the_contracts_is_searched(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the runs and the study's journal go beside the spec
    search = {
        "objective": {"node": "a", "metric": "val_top1"},
        "trials": 2,
        "sampler": "random",
        "pruner": "none",
        "gates": ["halfway", "through"],
        "edges": [
            {"to": "a", "from": "labels", "fixed": True},
            {"to": "a", "from": "b", "losses": ["l1_logits", "kl"]},
        ],
        "models": {"b": [{"type": "tiny_mlp", "hidden": 4}, {"type": "tiny_mlp"}]},
    }
    spec = _spec(tmp_path, search=search)
    code, out, err = cli("search", spec, "--trials", "2", *PLUGIN)
    assert code == 0, out + err
    code, out, err = cli("search", spec, "--summary", *PLUGIN)
    assert code == 0, out + err
    assert "2 complete" in out or "complete: 2" in out, out


def _explodes() -> Any:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (_explodes, "edges[2].gate: gate 'explodes' failed to build: RuntimeError: boom"),
        (lambda: object(), "edges[2].gate: gate 'explodes' returned object, which is not a"),
    ],
)
def test_a_gate_that_does_not_build_is_an_issue_at_its_key(
    tmp_path: Path, cli: Cli, factory: Callable[[], Any], expected: str
) -> None:
    """It was None, 'reported elsewhere' where nothing reported it: the spec was called
    valid, and compiling it stopped at a bare assert."""
    nodes = {n: {"model": {"type": "small_cnn", "width": 4}} for n in ("a", "b")}
    edges = [
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "a", "from": "b", "gate": "explodes"},
    ]
    spec = write_spec(tmp_path, small_spec("bad", nodes, edges))
    with GATES.registered("explodes", factory):
        code, out, err = cli("validate", spec)
    assert code == 1, out + err
    assert expected in out + err, out + err
    assert "Traceback" not in out + err


def test_a_default_loss_that_does_not_build_is_named_where_the_default_is(
    tmp_path: Path, cli: Cli
) -> None:
    nodes = {n: {"model": {"type": "small_cnn", "width": 4}} for n in ("a", "b")}
    edges = [{"to": "a", "from": "labels"}, {"to": "b", "from": "labels"}]
    edges += [{"to": "a", "from": "b"}, {"to": "b", "from": "a"}]
    data = small_spec("bad", nodes, edges, defaults={"loss": "explodes"})
    with LOSSES.registered("explodes", _explodes, target="logits"):
        code, out, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1, out + err
    assert "defaults.loss: loss 'explodes' failed to build: RuntimeError: boom" in out + err
