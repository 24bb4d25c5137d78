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


def one_node(folder: Path, name: str) -> Path:
    """A spec of one node on the labels, written in ``folder``."""
    return write_spec(
        folder, small_spec(name, {"a": {"model": "small_cnn"}}, [{"to": "a", "from": "labels"}])
    )


def a_spec_file(folder: Path) -> Path:
    """A file that is not any command's output (a user's spec): never to be replaced."""
    other = folder / "other.yaml"
    other.write_text("version: 1\n")
    return other


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


# --------------------------------------------------------------------------- ktg export


@pytest.mark.parametrize(
    "target",
    ["spec.resolved.yaml", "last.pt", "metrics.jsonl", "run.json", "best/b.pt", "state"],
)
def test_export_never_writes_over_a_file_of_its_run(cli: Cli, run: Path, target: str) -> None:
    # before: `-o RUN/last.pt` (or the spec, or another node's weights) was replaced by the
    # exported model, and the run could no longer be resumed, evaluated or trained again
    if target == "state":
        target = str(next((run / "state").iterdir()).relative_to(run))
    before = snapshot(run)
    code, out, err = cli(
        "export", run, "--node", "a", "--format", "torchscript", "-o", run / target
    )
    assert code == 2 and out == ""
    assert "writing it would replace it" in err
    assert snapshot(run) == before


def test_export_takes_a_new_file_inside_its_run(cli: Cli, run: Path) -> None:
    code, out, _ = cli("export", run, "--node", "a", "--format", "torchscript", "-o", run / "a.ts")
    assert code == 0 and out.startswith(f"wrote {run / 'a.ts'}")
    # an earlier export of the same format is replaced
    code, _, _ = cli("export", run, "--node", "b", "--format", "torchscript", "-o", run / "a.ts")
    assert code == 0


@pytest.mark.parametrize("node", ["../last", "best/a", "..", ""])
def test_export_refuses_a_node_name_that_is_a_path(cli: Cli, trained: Path, node: str) -> None:
    # before: --node ../last read RUN/last.pt as a node file (torch's TorchScript warning and
    # "corrupt" after an earlier export over it)
    code, _, err = cli("export", trained, "--node", node, "-o", trained.parent / "x.onnx")
    assert code == 2
    assert f"--node {node!r} is not a node name" in err
    assert not (trained.parent / "x.onnx").exists()


def test_export_refuses_a_name_of_the_other_format(cli: Cli, trained: Path, tmp_path: Path) -> None:
    # before: the default --format onnx wrote an ONNX model into a.pt
    code, _, err = cli("export", trained, "--node", "a", "-o", tmp_path / "a.pt")
    assert code == 2
    assert "named as a TorchScript file (.pt), but --format is onnx" in err
    assert "--format torchscript" in err and not (tmp_path / "a.pt").exists()
    code, _, err = cli(
        "export", trained, "--node", "a", "--format", "torchscript", "-o", tmp_path / "a.onnx"
    )
    assert code == 2 and "named as an ONNX model (.onnx), but --format is torchscript" in err


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_never_replaces_a_file_that_is_not_an_export(
    cli: Cli, trained: Path, tmp_path: Path, fmt: str
) -> None:
    # before: `-o spec.yaml` replaced the spec with a model
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\n")
    code, _, err = cli("export", trained, "--node", "a", "--format", fmt, "-o", spec)
    assert code == 2
    assert "exists and is not" in err and "writing it would replace it" in err
    assert spec.read_text() == "version: 1\n"


# --------------------------------------------------------------------------- ktg schema


def test_schema_never_replaces_a_file_it_did_not_write(cli: Cli, tmp_path: Path) -> None:
    # before: `ktg schema -o spec.yaml` replaced the spec with the JSON Schema
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nname: mine\n")
    code, out, err = cli("schema", "-o", spec)
    assert code == 2 and out == ""
    assert "exists and is not the JSON Schema that ktg schema wrote" in err
    assert spec.read_text() == "version: 1\nname: mine\n"
    # its own files are written again (the repository's schemas/ and docs/ are refreshed so)
    schema, reference = tmp_path / "s.json", tmp_path / "ref.md"
    for _ in range(2):
        assert cli("schema", "-o", schema)[0] == 0
        assert cli("schema", "--reference", "-o", reference)[0] == 0
    assert json.loads(schema.read_text())["title"] == "ktg spec"
    before = schema.read_bytes()
    code, _, err = cli("schema", "--reference", "-o", schema)  # the other one: refused
    assert code == 2 and "is not the spec reference" in err
    assert schema.read_bytes() == before


# --------------------------------------------------------------------------- ktg bench


def test_bench_json_may_not_be_the_file_it_compares_with(cli: Cli, tmp_path: Path) -> None:
    # before: the earlier measurement was read, then replaced by this one
    spec = one_node(tmp_path, "b")
    earlier = tmp_path / "earlier.json"
    earlier.write_text('{"images_per_s": {}, "threads": 1}\n')
    code, out, err = cli("bench", spec, "--json", earlier, "--compare", earlier)
    assert code == 2 and out == ""
    assert "is the --compare file" in err
    assert earlier.read_text() == '{"images_per_s": {}, "threads": 1}\n'


def test_bench_json_never_replaces_a_file_that_is_not_a_bench_result(
    cli: Cli, tmp_path: Path
) -> None:
    # before: `--json other.yaml` replaced that spec with the measurement
    spec = one_node(tmp_path, "b")
    other = a_spec_file(tmp_path)
    code, out, err = cli("bench", spec, "--json", other)
    assert code == 2 and out == ""
    assert "exists and is not a ktg bench --json result" in err
    assert other.read_text() == "version: 1\n"
    from ktg_dsl.bench.compare import check_replaceable

    earlier = tmp_path / "earlier.json"  # an earlier result is replaced, as is an empty file
    earlier.write_text('{"spec": "b", "date": "2026-12-07", "images_per_s": {}}')
    check_replaceable(str(earlier))
    (tmp_path / "empty.json").touch()
    check_replaceable(str(tmp_path / "empty.json"))


def test_bench_compare_with_a_folder_says_so(cli: Cli, tmp_path: Path) -> None:
    # before: "not a ktg bench --json file (--compare X: no such file (...))"
    spec = one_node(tmp_path, "b")
    code, _, err = cli("bench", spec, "--compare", tmp_path)
    assert code == 2
    assert f"--compare {tmp_path} is a folder" in err and "no such file" not in err


def test_bench_variants_features_without_feature_edges_is_refused(cli: Cli, tmp_path: Path) -> None:
    # before: nothing was measured, an empty table printed, exit 0
    spec = one_node(tmp_path, "b")
    code, out, err = cli("bench", spec, "--variants", "features")
    assert code == 2 and out == ""
    assert "has no feature edges" in err and "leave features out" in err


def test_bench_comparison_without_a_common_variant_says_so() -> None:
    from ktg_dsl.bench.compare import format_comparison

    # before: a header and no row, as if every variant had been compared
    earlier = {"images_per_s": {"engine(fp32)": 100.0}, "threads": 1}
    now = {"images_per_s": {"baseline": 50.0}, "threads": 1}
    text = format_comparison(earlier, now, "e.json")
    assert "no variant was measured in both" in text
    assert "then: engine(fp32); now: baseline" in text and "now/then" not in text
    both = format_comparison(earlier, {"images_per_s": {"engine(fp32)": 150.0}}, "e.json")
    assert "engine(fp32)" in both and "1.500" in both


# --------------------------------------------------------------------------- ktg render


def test_render_with_a_format_never_replaces_a_file_that_is_not_a_drawing(
    cli: Cli, tmp_path: Path
) -> None:
    # before: `-o other.yaml --format svg` replaced that spec with the picture
    spec = one_node(tmp_path, "r")
    other = a_spec_file(tmp_path)
    code, out, err = cli("render", spec, "-o", other, "--format", "svg")
    assert code == 2 and out == ""
    assert "exists and is not a drawing" in err
    assert other.read_text() == "version: 1\n"
    # a drawing of any name is drawn again, in any format
    picture = tmp_path / "graph.txt"
    for fmt in ("dot", "svg", "dot"):
        assert cli("render", spec, "-o", picture, "--format", fmt)[0] == 0
    assert picture.read_text().startswith("digraph")


# --------------------------------------------------------------------------- plot, list


def test_list_refuses_an_empty_kind(cli: Cli) -> None:
    # before: `ktg list ""` (an unset $KIND) listed every kind
    code, out, err = cli("list", "")
    assert code == 2 and out == ""
    assert "unknown kind ''; one of: models" in err


# --------------------------------------------------------------------------- empty names

EMPTY = [  # before: the defaults (or the current folder) were taken, or the file not written
    ("bench", "SPEC", "--json", ""),  # measured for minutes, then wrote no JSON
    ("bench", "SPEC", "--compare", ""),  # measured without the comparison
    ("render", "SPEC", "-o", "x.svg", "--schedule", ""),  # drew no schedule
    ("render", "SPEC", "-o", ""),  # "cannot write .: it is a folder" (exit 1)
    ("schema", "-o", ""),  # "cannot write .: it is a folder" (exit 1)
    ("eval", "RUN", "--pictures", ""),  # the pictures went to RUN/eval
    ("eval", ""),
    ("export", "", "--node", "a", "-o", "a.onnx"),  # "best/a.pt does not exist"
    ("export", "RUN", "--node", "a", "-o", ""),
    ("plot", "RUN", "-o", ""),  # RUN/curves.svg and curves.png were written
    ("plot", ""),
]


@pytest.mark.parametrize("args", EMPTY, ids=lambda a: " ".join(a).replace("  ", " '' "))
def test_an_empty_file_or_folder_name_is_a_wrong_command_line(
    args: tuple[str, ...], run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ktg_dsl.cli import main

    spec = one_node(tmp_path, "e")
    given = [{"SPEC": str(spec), "RUN": str(run)}.get(a, a) for a in args]
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(given)
    assert exit_.value.code == 2
    assert "is empty: name a file or folder" in capsys.readouterr().err
    assert snapshot(tmp_path) == before  # nothing written, in the run or beside it
