"""The bundled self-supervised spec trains in-process and records knn_top1 for every node;
the bad inputs of a self-supervised graph are refused with their key paths and hints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ktg_dsl.check import load_spec
from ktg_dsl.run.session import train_new

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "digits-simclr.yaml"
# one epoch of 3 steps on 40 images per class: seconds, every part of a run still exercised
FAST = (
    "train.epochs=1",
    "train.threads=1",
    "train.precision=fp32",  # ktg eval (fp32) then reproduces the logged kNN exactly
    "data.dataset={type: digits, train_per_class: 40}",
    "data.batch_size=128",
)


def test_bundled_spec_trains_and_logs_knn_for_every_node(cli, tmp_path: Path) -> None:
    spec = load_spec(SPEC, overrides=[*FAST])
    run, result = train_new(spec, None, str(tmp_path / "run"), progress=False)
    assert result is not None and result.epochs_done == 1
    rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    nodes = {r["node"]: r for r in rows if "node" in r}
    assert set(nodes) == {"a", "b"}
    for row in nodes.values():
        assert 0.0 <= row["knn_top1"] <= 100.0
        assert row["val_top1"] == row["knn_top1"]  # the key every reader uses, as kNN
        assert row["train_loss"] > 0.0 and "labels" in row["edges"]
    assert result.best["a"]["val_top1"] == nodes["a"]["knn_top1"]
    assert (run.path / "best" / "a.pt").exists()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run.tensorboard("b")))
    events.Reload()
    assert [e.value for e in events.Scalars("knn_score")] == pytest.approx([nodes["b"]["knn_top1"]])
    # ktg eval scores the best weights by kNN as training did: the logged best, in fp32 exactly
    code, out, err = cli("eval", run.path, "--json", "--pictures", "none", "--threads", "1")
    assert code == 0 and "warning" not in err, err  # the resolved spec's defaults: no one's choice
    scores = {s["node"]: s for s in json.loads(out)}
    for name in ("a", "b"):
        assert scores[name]["split"] == "kNN val"
        assert scores[name]["top1"] == pytest.approx(result.best[name]["val_top1"], abs=1e-9)
        assert scores[name]["top1"] <= scores[name]["top5"] <= 100.0
        assert sum(map(sum, scores[name]["confusion"])) == scores[name]["samples"]
    # ktg plot: the evaluation is kNN, the training top-1 the contrastive accuracy
    code, _, err = cli("plot", run.path, "-o", tmp_path / "curves.svg")
    assert code == 0, err
    svg = (tmp_path / "curves.svg").read_text()
    assert "<!-- a kNN val -->" in svg and "<!-- b train (contrastive) -->" in svg
    # export takes classifiers: a self-supervised node is refused, clearly
    code, _, err = cli("export", run.path, "--node", "a", "-o", tmp_path / "a.onnx")
    assert code == 1 and "is a self-supervised node" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("replicas", ["1", "2"], ids=["graph-groups", "replicas"])
def test_nproc_trains_a_self_supervised_graph(cli, tmp_path: Path, replicas: str) -> None:
    """--nproc 2: the nodes on two graph groups, or two replicas of both; every node's kNN
    top-1 in the run's log (the engine's equality to one process: test_ssl_distributed)."""
    sets = [arg for item in FAST[:2] for arg in ("--set", item)]
    sets += [
        "--set",
        f"train.out_dir={tmp_path}",
        "--set",
        f"train.distributed.data_parallel={replicas}",
    ]
    code, _, err = cli("train", SPEC, "--nproc", "2", *sets)
    assert code == 0, err
    (log,) = tmp_path.rglob("metrics.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["node"] for r in rows if 0 <= r["knn_top1"] <= 100} == {"a", "b"}


def test_a_model_without_the_named_classifier_is_a_spec_issue(cli, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    text = SPEC.read_text().replace("head: {dim: 32}", "head: {dim: 32, classifier: body}")
    spec.write_text(text)
    code, _, err = cli("validate", "--deep", spec)
    assert code == 1 and "Traceback" not in err
    assert "self_supervised.head.classifier: node 'a': 'body' is not a module of 'SmallCNN'" in err
    code, _, err = cli("train", spec, "--set", f"train.out_dir={tmp_path / 'runs'}")
    assert code == 1 and "name its classifier in self_supervised.head.classifier" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.pt"))


@pytest.mark.slow
def test_a_search_scores_trials_by_knn(cli, tmp_path: Path) -> None:
    """The objective knn_top1 is what each trial reports (node a's best kNN top-1)."""
    spec = tmp_path / "search.yaml"
    spec.write_text(
        SPEC.read_text().replace("  epochs: 2", f"  epochs: 1\n  out_dir: {tmp_path / 'runs'}")
        + "search:\n  objective: {node: a, metric: knn_top1}\n  trials: 2\n"
        "  sampler: random\n  pruner: none\n  gates: [through, negative_linear]\n"
    )
    overrides = [arg for item in FAST[1:] for arg in ("--set", item)]
    code, out, err = cli("search", spec, "--threads", "1", *overrides)
    assert code == 0, err
    code, out, err = cli("search", spec, "--summary", *overrides)
    assert code == 0 and "knn_top1" in out + err
    rows = [json.loads(line) for p in (tmp_path / "runs").rglob("metrics.jsonl")
            for line in p.read_text().splitlines()]  # fmt: skip
    assert len({r["knn_top1"] for r in rows if r["node"] == "a"}) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alone", "dml", "ktg"])
def test_the_cifar10_simclr_specs_train_on_cifar10_files(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The bundled CIFAR-10 SimCLR specs as written (ResNet-32 nodes, LARS, warm-up + cosine,
    SimCLR's augmentation at 32 x 32) for one short epoch on a small CIFAR-10 in the real
    on-disk format (torchvision's loader): each node logs its kNN top-1."""
    from .test_data import _write_cifar

    _write_cifar(tmp_path / "cifar", 10, monkeypatch, per_batch=12, test_size=10)
    spec = ROOT / "specs" / f"cifar10-simclr-{name}.yaml"
    sets = [
        f"data.root={tmp_path / 'cifar'}",
        "data.batch_size=20",  # 60 training images: 3 steps
        "train.epochs=1",
        "defaults.scheduler.warmup_epochs=0.5",  # of 10: the cosine must start within the run
        "train.threads=1",
        f"train.out_dir={tmp_path / 'runs'}",
        "self_supervised.knn.k=5",
    ]
    code, _, err = cli("train", spec, "--no-progress", *(a for s in sets for a in ("--set", s)))
    assert code == 0, err
    (log,) = (tmp_path / "runs").rglob("metrics.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    nodes = load_spec(spec).nodes
    assert {r["node"] for r in rows if 0.0 <= r["knn_top1"] <= 100.0} == set(nodes)
