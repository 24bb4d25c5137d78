"""Issue 22, the researcher's loop: every edge's loss in metrics.jsonl, TensorBoard and
``ktg plot``; ``ktg eval``; self-describing node files and ``ktg_dsl.load_node``; ``ktg
export``; fine-tuning from weights with another head; render without weights."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from ktg_dsl.cli import main
from ktg_dsl.run.logs import read_metrics

from .conftest import ROOT, small_spec, write_spec

GATES = [["through", "positive_linear"], ["through", "through"]]  # a <- b opens in epoch 2


def loop_spec(**extra: Any) -> dict[str, Any]:
    spec = small_spec(
        "loop",
        {"a": {"model": {"type": "small_cnn", "width": 4}}, "b": {"model": "small_cnn"}},
        train_size=64,
        epochs=3,
        classes=4,
        gate_matrix=GATES,
        **extra,
    )
    spec["data"]["dataset"]["val_size"] = 40
    return spec


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loop")
    spec = write_spec(folder, loop_spec())
    assert main(["train", str(spec), "--run-dir", str(folder / "run")]) == 0
    return folder / "run"


def rows_of(run: Path, node: str) -> list[dict[str, Any]]:
    return [r for r in read_metrics(run / "metrics.jsonl") if r["node"] == node]


# --------------------------------------------------------------------------- per-edge terms


def test_each_edges_term_is_logged_and_the_terms_add_up_to_the_train_loss(run: Path) -> None:
    a = rows_of(run, "a")
    assert [sorted(r["edges"]) for r in a] == [["labels"], ["b", "labels"], ["b", "labels"]]
    for r in a + rows_of(run, "b"):
        terms = sum(e["term"] for e in r["edges"].values())
        assert terms == pytest.approx(r["train_loss"], rel=1e-5)
        for key, e in r["edges"].items():
            assert e["weight"] == pytest.approx(r["gates"][key], abs=1e-6)  # gates per epoch
            assert e["term"] == pytest.approx(e["weight"] * e["loss"], rel=1e-5)
            assert e["loss"] >= 0.0
    # positive_linear over 3 epochs: 0, 0.5, 1
    assert [r["edges"].get("b", {}).get("weight") for r in a] == [None, 0.5, 1.0]


def test_edge_terms_are_tensorboard_scalars_in_the_receivers_files(run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb" / "a"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"edge_term/labels", "edge_term/b", "edge_weight/b", "edge_loss/b"} <= tags
    steps = [(e.step, e.value) for e in events.Scalars("edge_weight/b")]
    assert steps == [(2, 0.5), (3, 1.0)]  # epochs from 1, as the other tags


def test_a_per_sample_gate_records_its_masked_loss(tmp_path: Path) -> None:
    spec = loop_spec()
    spec.pop("gate_matrix")
    spec["edges"] = [
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "a", "from": "b", "gate": "correct"},
    ]
    spec["train"]["epochs"] = 1
    assert main(["train", str(write_spec(tmp_path, spec)), "--run-dir", str(tmp_path / "r")]) == 0
    (row,) = rows_of(tmp_path / "r", "a")
    assert set(row["edges"]) == {"labels", "b"}
    assert sum(e["term"] for e in row["edges"].values()) == pytest.approx(row["train_loss"])


def test_plot_draws_a_panel_per_node_with_its_own_loss_axis(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "curves.svg"
    assert main(["plot", str(run), "-o", str(out)]) == 0
    svg = out.read_text()
    # top-1, then per node its terms and (twin axis) its evaluation cross-entropy
    assert svg.count('id="axes_') == 1 + 2 * 2


# --------------------------------------------------------------------------- ktg eval


def test_eval_scores_the_best_weights_as_the_run_logged_them(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    results = {r["node"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(results) == {"a", "b"}
    for node, r in results.items():
        best = max(rows_of(run, node), key=lambda row: row["val_top1"])
        assert r["top1"] == pytest.approx(best["val_top1"], abs=1e-6)
        assert r["epoch"] == best["epoch"] + 1
        matrix = torch.tensor(r["confusion"])
        assert int(matrix.sum()) == r["samples"] == 40
        assert r["top1"] == pytest.approx(100.0 * float(matrix.trace()) / 40)
        assert r["top5"] == 100.0  # 4 classes: the top 5 hold every class
        for i, acc in enumerate(r["per_class"].values()):
            assert acc == pytest.approx(100.0 * float(matrix[i, i] / matrix[i].sum()))
        assert (run / "eval" / f"{node}-best-val-confusion.svg").is_file()


def test_eval_of_the_last_weights_on_one_node_prints_a_table(
    run: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    capsys.readouterr()
    code = main(["eval", str(run), "--node", "b", "--checkpoint", "last", "--pictures", "none"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[1].split()[:4] == ["b", "last", "3", "val"]
    assert "b per class: 0 " in out


def test_eval_refuses_what_is_not_a_run_and_an_unknown_node(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    assert main(["eval", str(run), "--node", "zz", "--pictures", "none"]) == 1
    err = capsys.readouterr().err
    assert "no node 'zz'" in err and "Traceback" not in err


# --------------------------------------------------------------------------- node files


def test_a_node_file_describes_itself_and_loads_alone(run: Path) -> None:
    import ktg_dsl
    from ktg_dsl.run.data import load_bundle

    node = ktg_dsl.load_node(run / "best" / "a.pt")
    assert node.classes == ["0", "1", "2", "3"] and node.input_shape == (3, 8, 8)
    assert node.source["ktg_version"] == ktg_dsl.__version__
    assert node.source["spec"]["model"]["type"] == "small_cnn"
    # the recorded preprocessing is the one training used: the same accuracy from raw images
    bundle = load_bundle(ktg_dsl.load_spec(run / "spec.resolved.yaml"))
    hits = node.predict(bundle.eval.images).argmax(1) == bundle.eval.labels
    assert 100.0 * int(hits.sum()) / len(hits) == pytest.approx(node.val_top1, abs=1e-9)
    # trained on float images (scale 1): 8-bit pixels would be read on the wrong scale
    assert node.scale == 1.0
    with pytest.raises(ktg_dsl.KtgRuntimeError, match="trained on float images"):
        node.predict(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


def test_load_node_refuses_a_run_file(run: Path) -> None:
    import ktg_dsl

    with pytest.raises(ktg_dsl.KtgRuntimeError, match="not a ktg node file"):
        ktg_dsl.load_node(run / "last.pt")


# --------------------------------------------------------------------------- export


def test_export_torchscript_matches_pytorch(run: Path, tmp_path: Path) -> None:
    import ktg_dsl

    out = tmp_path / "a.pt"
    assert main(["export", str(run), "--node", "a", "--format", "torchscript", "-o", str(out)]) == 0
    node = ktg_dsl.load_node(run / "best" / "a.pt")
    x = torch.randn(7, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(out))(x), node.model(x))


@pytest.mark.slow  # torch.export's ONNX exporter takes about 10 s
def test_export_onnx_matches_pytorch_with_its_metadata(run: Path, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import ktg_dsl

    out = tmp_path / "a.onnx"
    assert main(["export", str(run), "--node", "a", "--format", "onnx", "-o", str(out)]) == 0
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(out)).metadata_props}
    assert meta["ktg.classes"] == ["0", "1", "2", "3"]
    node = ktg_dsl.load_node(run / "best" / "a.pt")
    assert meta["ktg.mean"] == list(node.mean)
    x = torch.randn(5, 3, 8, 8)  # another batch size than the export's
    (got,) = ort.InferenceSession(str(out)).run(None, {"images": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), node.model(x), atol=1e-4, rtol=1e-3)


def test_export_never_writes_over_its_node_file(run: Path, capsys: Any) -> None:
    source = run / "best" / "a.pt"
    before = source.read_bytes()
    args = ["export", str(run), "--node", "a", "--format", "torchscript", "-o", str(source)]
    assert main(args) == 2
    assert "would replace it" in capsys.readouterr().err
    assert source.read_bytes() == before


# --------------------------------------------------------------------------- fine-tuning


def _image_folder(root: Path, classes: int = 3, per_class: int = 4) -> None:
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for part in ("train", "val"):
        for c in range(classes):
            folder = root / part / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = torch.randint(0, 256, (16, 16, 3), generator=gen, dtype=torch.uint8)
                Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")


@pytest.mark.slow
def test_imagenet_weights_fine_tune_under_a_new_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torchvision

    monkeypatch.setenv("HOME", str(tmp_path))  # the spec names the weights with ~
    weights = torchvision.models.resnet18(num_classes=1000).state_dict()
    torch.save(weights, tmp_path / "resnet18-imagenet.pth")
    _image_folder(tmp_path / "images")
    spec = small_spec(
        "finetune",
        {
            "net": {
                "model": {"type": "resnet18", "stem": "imagenet"},
                "checkpoint": "~/resnet18-imagenet.pth",
                "checkpoint_fit": "partial",
            }
        },
        [{"to": "net", "from": "labels"}],
        epochs=1,
    )
    spec["data"] = {
        "dataset": {"type": "imagefolder", "image_size": 16, "augment": False},
        "root": str(tmp_path / "images"),
        "batch_size": 4,
    }
    file = write_spec(tmp_path, spec)
    assert main(["train", str(file), "--run-dir", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "loaded 120 of its 122 tensors" in err
    assert "fc.weight: the file's (1000, 512) does not fit the model's (3, 512)" in err
    from ktg_dsl.run.trained import load_node

    node = load_node(tmp_path / "run" / "best" / "net.pt")
    assert node.classes == ["class0", "class1", "class2"]


def test_checkpoint_skip_restarts_the_named_layers(tmp_path: Path) -> None:
    from ktg_dsl.check import load_spec
    from ktg_dsl.run.recipe import Recipe

    spec = loop_spec()
    first = tmp_path / "first"
    assert main(["train", str(write_spec(tmp_path, spec)), "--run-dir", str(first)]) == 0
    spec["nodes"]["a"].update(checkpoint=str(first / "best" / "a.pt"), checkpoint_skip=["fc."])
    recipe = Recipe(load_spec(write_spec(tmp_path, spec, "again.yaml")), tmp_path / "r")
    recipe.setup()
    try:
        model = recipe.program.nodes["a"].model.state_dict()
        saved = torch.load(first / "best" / "a.pt", weights_only=True)["state_dict"]
        heads = [k for k in saved if k.startswith("fc.")]
        assert heads and all(not torch.equal(model[k], saved[k]) for k in heads)
        assert all(torch.equal(model[k], saved[k]) for k in saved if k not in heads)
    finally:
        recipe.cleanup()


# --------------------------------------------------------------------------- smaller items


def test_render_needs_no_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chdir(tmp_path)  # no runs/ here: the teacher's checkpoint is not there
    try:
        code = main(["render", str(ROOT / "specs" / "cifar100-kd.yaml"), "-o", "kd.svg"])
    finally:
        os.chdir(ROOT)
    assert code == 0, capsys.readouterr().err
    assert "warning" in capsys.readouterr().err
    assert (tmp_path / "kd.svg").stat().st_size > 0


def test_an_unknown_model_hints_at_the_plugin(tmp_path: Path, capsys: Any) -> None:
    spec = loop_spec()
    spec["nodes"]["a"]["model"] = {"type": "plugin_net"}
    assert main(["validate", str(write_spec(tmp_path, spec))]) == 1
    assert "--plugin MODULE" in capsys.readouterr().err


def test_list_shows_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert "``" not in capsys.readouterr().out


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("bench", "search"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "(default: 1)" in out or "(default: 10)" in out, command


@pytest.mark.slow
def test_a_search_prints_its_own_lines_not_optunas(tmp_path: Path) -> None:
    from .conftest import run_ktg
    from .test_search import search_spec

    spec = write_spec(tmp_path, search_spec(trials=1, epochs=1))
    for _ in range(2):  # a new study, then the same one again: Optuna notes each
        done = run_ktg("search", spec, "--trials", "1", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        both = done.stdout + done.stderr
        assert "A new study created" not in both
        assert "Using an existing study" not in both
        assert "\x1b[K" not in both  # no live line outside a terminal
        assert "trial 0" in both
