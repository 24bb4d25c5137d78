"""The bad-input hunt on the command lines of ``ktg eval``, ``export``, ``bench``, ``schema``,
``list`` and ``plot``: files of the wrong kind in a run's places, outputs that would replace a
run's or a user's files, node names that are paths, empty values. One small trained run (two
nodes, one epoch on synthetic data) feeds the module; a test that damages a run copies it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import small_spec, write_spec

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ktg_dsl.cli import main

    folder = tmp_path_factory.mktemp("hunt-cli")
    nodes = {"a": {"model": "small_cnn"}, "b": {"model": "small_cnn"}}
    edges = [{"to": "a", "from": "labels"}, {"to": "b", "from": "labels"}]
    spec = write_spec(folder, small_spec("hunt-cli", nodes, edges))
    assert main(["train", str(spec), "--run-dir", str(folder / "run"), "--threads", "1"]) == 0
    return folder / "run"


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run, for a test to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- ktg eval


def test_eval_refuses_a_node_file_in_place_of_last_pt(cli: Cli, run: Path) -> None:
    # before: every node was loaded from node a's file and scored as the run's "last" weights
    shutil.copy(run / "best" / "a.pt", run / "last.pt")
    code, out, err = cli("eval", run, "--checkpoint", "last", "--pictures", "none")
    assert code == 1 and out == ""
    assert "is the node file of node 'a', not a run's last.pt" in err
    assert "Traceback" not in err


def test_eval_refuses_a_run_checkpoint_in_place_of_a_node_file(cli: Cli, run: Path) -> None:
    # before: "state of node 'a' in .../best/a.pt .../best/state/a-...pt does not exist"
    shutil.copy(run / "last.pt", run / "best" / "a.pt")
    code, out, err = cli("eval", run, "--node", "a", "--pictures", "none")
    assert code == 1 and out == ""
    assert "is a run checkpoint (a last.pt), not the node file of node 'a'" in err


def test_eval_refuses_another_nodes_file_under_a_nodes_name(cli: Cli, run: Path) -> None:
    # before: node b was scored with node a's weights
    shutil.copy(run / "best" / "a.pt", run / "best" / "b.pt")
    code, _, err = cli("eval", run, "--node", "b", "--pictures", "none")
    assert code == 1
    assert "holds the weights of node 'a', not of node 'b'" in err


def test_eval_refuses_an_unknown_node_before_loading_the_data(
    cli: Cli, trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ktg_dsl.run.evaluation as evaluation

    def no_data(*_: object) -> None:
        raise AssertionError("the data was loaded for a node the run does not have")

    monkeypatch.setattr(evaluation, "load_bundle", no_data)
    code, _, err = cli("eval", trained, "--node", "aa", "--pictures", "none")
    assert code == 1
    assert "the run has no node 'aa' (did you mean 'a'?); its nodes: a, b" in err


def test_eval_measures_a_node_named_twice_once(cli: Cli, trained: Path) -> None:
    code, out, _ = cli(
        "eval", trained, "--node", "b", "--node", "b", "--json", "--pictures", "none"
    )
    assert code == 0
    assert [r["node"] for r in json.loads(out)] == ["b"]


def test_eval_pictures_that_name_a_file_are_a_wrong_command_line(
    cli: Cli, trained: Path, tmp_path: Path
) -> None:
    # before: exit 1, "cannot write notes.txt/x.svg: ... is not a folder" (x.svg made up)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    code, _, err = cli("eval", trained, "--pictures", notes)
    assert code == 2
    assert "is a file, not a folder" in err and "x.svg" not in err
    assert notes.read_text() == "mine"
