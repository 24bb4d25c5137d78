"""``ktg bench`` of a self-supervised graph. Its baseline (the original's SimCLR deep
collaborative learning loop, written plainly) must train exactly as the engine does from the
same weights on the same two views, or the comparison would not be honest; then the command end
to end on a tiny synthetic graph, and its refusals. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from ktg_dsl.bench.ssl import SslBaseline, random_view_batches, ssl_ideal_step
from ktg_dsl.check import parse_data
from ktg_dsl.components.data import DatasetInfo
from ktg_dsl.engine.ssl import SelfSupervisedEngine
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.run.data import compile_spec

from .conftest import write_spec

INFO = DatasetInfo(4, (3, 8, 8))
TAPS = {"f2": "block2"}


def tiny(**train: Any) -> dict[str, Any]:
    """Three small CNNs (BatchNorm inside): NT-Xent self edges, one of them gated,
    similarity_kl and view_mse between nodes, a cut-off edge, a rising gate."""
    return {
        "version": 1,
        "name": "tiny-ssl-bench",
        "seed": 3,
        "data": {
            "dataset": {"type": "synthetic", "num_classes": 4, "image_size": 8, "train_size": 64},
            "batch_size": 8,
        },
        "train": {"epochs": 4, **train},
        "defaults": {
            "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1.0e-3},
            "labels_loss": {"type": "nt_xent", "temperature": 0.5},
            "loss": {"type": "similarity_kl", "temperature": 0.3},
        },
        "nodes": {
            "a": {"model": {"type": "small_cnn", "width": 4}},
            "b": {"model": {"type": "small_cnn", "width": 4}},
            "c": {"model": {"type": "small_cnn", "width": 8}},
        },
        "edges": [
            {"to": "a", "from": "labels"},
            {"to": "a", "from": "b", "gate": "positive_linear"},
            {"to": "a", "from": "c"},
            {"to": "b", "from": "labels", "gate": "negative_linear"},
            {"to": "b", "from": "a", "loss": "view_mse"},
            {"to": "c", "from": "labels"},
            {"to": "c", "from": "b", "gate": "cutoff"},
        ],
        "self_supervised": {"head": {"dim": 8}, "knn": {"k": 3}},
    }


def _spec(data: dict[str, Any]) -> Any:
    spec, issues = parse_data(data)
    assert spec is not None and not [i for i in issues if i.is_error], issues
    return spec


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_baseline_trains_exactly_as_the_engine_from_the_same_weights(reduction: str) -> None:
    spec = _spec(tiny(precision="fp32", device="cpu", peer_reduction=reduction))
    program = compile_spec(spec, data_info=INFO)
    baseline = SslBaseline(program)  # its own copies of the initial weights
    engine = SelfSupervisedEngine(program)
    start = [{k: v.clone() for k, v in m.state_dict().items()} for m in baseline.models]
    batches = random_view_batches(INFO, 8, program.device, n=2)
    for x, y in batches:  # two steps: the momentum buffers take part in the second
        baseline(x, y)
        engine.train_step(x, y, program.epochs // 2)
    for node, model, before in zip(program.nodes.values(), baseline.models, start, strict=True):
        got, want = model.state_dict(), node.model.state_dict()
        assert got.keys() == want.keys()
        moved = False
        for key in got:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-6, msg=key)
            moved = moved or not torch.equal(got[key], before[key])
        assert moved, f"node {node.name} did not train"
    assert all(s != 0.0 for s in baseline.loss_sums)  # .item() of every node's loss


def test_ideal_is_each_nodes_own_simclr_step() -> None:
    spec = _spec(tiny(precision="fp32", device="cpu"))
    program = compile_spec(spec, data_info=INFO)
    before = [p.detach().clone() for p in program.nodes["a"].model.parameters()]
    step = ssl_ideal_step(program)
    x, y = random_view_batches(INFO, 8, program.device, n=1)[0]
    step(x, y)  # trains copies: the program's own weights stay as they were
    after = list(program.nodes["a"].model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_baseline_refuses_feature_edges_in_words() -> None:
    data = tiny(precision="fp32", device="cpu")
    for node in data["nodes"].values():
        node["taps"] = TAPS
    data["edges"].append({"to": "a.f2", "from": "c.f2", "loss": "attention"})
    program = compile_spec(_spec(data), data_info=INFO)
    with pytest.raises(KtgRuntimeError, match=r"c\.f2 -> a\.f2.*--variants engine"):
        SslBaseline(program)


def test_bench_measures_a_self_supervised_spec(tmp_path: Path, cli) -> None:
    out = tmp_path / "bench.json"
    path = write_spec(tmp_path, tiny())
    code, stdout, err = cli(
        "bench", path, "--steps", "1", "--rounds", "1", "--warmup", "0", "--json", out
    )
    assert code == 0, err
    result = json.loads(out.read_text())
    p = result["precision_auto"]
    names = set(result["images_per_s"])
    assert {"baseline", f"engine({p})", "engine(fp32)", "ideal(fp32)", "epoch(auto)"} <= names
    assert all(v > 0 for v in result["images_per_s"].values())
    assert {"engine_auto/baseline", "engine_fp32/baseline", "engine_fp32/ideal_fp32"} <= set(
        result["ratios"]
    )
    assert "self-supervised, two views" in err and "engine_fp32/baseline" in stdout


def test_bench_ssl_with_feature_edges_measures_the_engine_variants(tmp_path: Path, cli) -> None:
    data = tiny()
    for node in data["nodes"].values():
        node["taps"] = TAPS
    data["edges"].append({"to": "a.f2", "from": "c.f2", "loss": "attention"})
    path = write_spec(tmp_path, data)
    code, _, err = cli("bench", path, "--steps", "1", "--rounds", "1", "--warmup", "0")
    assert code != 0 and "does not write feature edges" in err and "Traceback" not in err
    out = tmp_path / "features.json"
    code, _, err = cli(
        "bench", path, "--variants", "engine,features", "--steps", "1", "--rounds", "1",
        "--warmup", "0", "--json", out,
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out.read_text())
    assert {"engine(logits edges)", "engine(no taps)"} <= set(result["images_per_s"])


def test_bench_nproc_refuses_a_self_supervised_spec(tmp_path: Path, cli) -> None:
    code, _, err = cli("bench", write_spec(tmp_path, tiny()), "--nproc", "2")
    assert code == 2
    assert "self-supervised" in err and "leave out --nproc" in err and "Traceback" not in err


def test_bench_measures_the_digits_simclr_spec(tmp_path: Path, cli) -> None:
    """The shipped spec (``ktg bench`` refused it before): the loop and the engine, one step."""
    out = tmp_path / "digits.json"
    spec = Path(__file__).parents[1] / "specs" / "digits-simclr.yaml"
    args = ("--variants", "baseline,engine", "--steps", "1", "--rounds", "1", "--warmup", "0")
    code, _, err = cli("bench", spec, *args, "--threads", "1", "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["spec"] == "digits-simclr" and result["threads"] == 1
    assert result["ratios"]["engine_fp32/baseline"] > 0
