"""A search may choose each edge's loss as well as its gate, keeps feature edges as written,
and exports the losses it chose."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from ktg_dsl.check import check_data, parse_data
from ktg_dsl.search.space import SearchSpace

from .conftest import write_spec
from .test_search import search_spec


def spec_data() -> dict:
    data = search_spec(trials=3)
    data["nodes"]["a"]["taps"] = {"f3": "block3"}
    data["nodes"]["b"]["taps"] = {"f3": "block3"}
    data["edges"].append({"to": "a.f3", "from": "b.f3", "loss": "attention"})
    data["search"]["edges"].append({"to": "a", "from": "b", "losses": ["kl", "dkd", "dist"]})
    return data


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_loss_choices_are_sampled_and_feature_edges_kept() -> None:
    spec, issues = parse_data(spec_data())
    assert spec is not None and not [i for i in issues if i.is_error], issues
    space = SearchSpace(spec)
    study = optuna.create_study(sampler=optuna.samplers.BruteForceSampler(seed=0))
    seen = set()
    for _ in range(6):
        trial = study.ask()
        sampled = space.suggest(trial)
        study.tell(trial, 0.0)
        data = space.concrete(sampled)
        report = check_data(data)
        assert report.ok, [i.format() for i in report.issues]
        edges = {(e["to"], e["from"]): e for e in data["edges"]}
        assert edges[("a.f3", "b.f3")] == {"to": "a.f3", "from": "b.f3", "loss": "attention"}
        if ("a", "b") in edges:
            loss = edges[("a", "b")]["loss"]
            assert loss == sampled["loss:a<-b"]
            seen.add(loss)
    assert seen == {"kl", "dkd", "dist"}


def test_loss_choices_that_cannot_fit_their_edge(tmp_path: Path, cli) -> None:
    data = spec_data()
    data["search"]["edges"] += [
        {"to": "b", "from": "a", "losses": ["ce", "attention"]},
        {"to": "a", "from": "labels", "losses": []},
    ]
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1
    assert "search.edges[3].losses[0]: 'ce' cannot be chosen for edge a -> b" in err
    assert "search.edges[3].losses[1]: 'attention' cannot be chosen" in err
    assert "search.edges[4].losses: no loss choices" in err


@pytest.mark.slow
def test_an_exported_trial_writes_its_losses(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = spec_data()
    data["search"]["trials"] = 1
    spec = write_spec(tmp_path, data)
    code, _, err = cli("search", spec)
    assert code == 0, err
    code, _, err = cli("search", spec, "--export", tmp_path / "best.yaml")
    assert code == 0, err
    exported = yaml.safe_load((tmp_path / "best.yaml").read_text())
    losses = {(e["to"], e["from"]): e.get("loss") for e in exported["edges"]}
    assert losses[("a.f3", "b.f3")] == "attention"
    if ("a", "b") in losses:
        assert losses[("a", "b")] in ("kl", "dkd", "dist")
    assert cli("validate", tmp_path / "best.yaml")[0] == 0
