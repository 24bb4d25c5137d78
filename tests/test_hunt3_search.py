"""Issue 24, item 11: a search study is keyed by what defines its trials. ``ktg search`` ran
into the same study whatever was overridden (``--set train.epochs=3``, then ``=2``) and ranked
trials of different budgets together. Now the study records its spec when it starts and a spec
that trains something else is refused, naming what changed, with the journal unchanged; what
says how a run uses the machine (threads) or how long the study runs (trials) is not part of
the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest

from ktg_dsl.check import load_spec
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.search.key import KEY_ATTR, SPEC_ATTR, check_study_key, differences, key_data

from .conftest import write_spec
from .test_search import search_spec, study_of


def _spec(tmp_path: Path, *overrides: str, **search: Any) -> Any:
    path = write_spec(tmp_path, search_spec(**search))
    return load_spec(path, list(overrides))


def _study() -> Any:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name="s")


def test_item11_a_study_records_its_spec_and_refuses_another(tmp_path: Path) -> None:
    study = _study()
    check_study_key(study, _spec(tmp_path, "train.epochs=3"), "s", "mem")
    assert study.user_attrs[KEY_ATTR] and json.loads(study.user_attrs[SPEC_ATTR])
    check_study_key(study, _spec(tmp_path, "train.epochs=3"), "s", "mem")  # the same: fine
    with pytest.raises(KtgRuntimeError) as caught:
        check_study_key(study, _spec(tmp_path, "train.epochs=2"), "s", "mem")
    text = str(caught.value)
    assert "study 's' in mem was started with another spec" in text
    assert "train.epochs was 3, now 2" in text and "--study NEW_NAME" in text


@pytest.mark.parametrize(
    "overrides",
    [
        ("train.threads=1",),
        ("search.trials=7",),
        ("search.timeout=60",),
        ("search.sampler=tpe",),
        ("train.distributed.data_parallel=2",),
    ],
    ids=["threads", "trials", "timeout", "sampler", "distributed"],
)
def test_item11_how_a_study_runs_is_not_what_it_trains(
    tmp_path: Path, overrides: tuple[str, ...]
) -> None:
    """Threads say how a run uses the cores (as run/state.py's training digest); the number
    of trials, the time limit and the sampler say how the study goes on, not what a trial is."""
    plain = key_data(_spec(tmp_path))
    assert key_data(_spec(tmp_path, *overrides)) == plain


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (("data.batch_size=16",), "data.batch_size was 32, now 16"),
        (("seed=2",), "seed was 1, now 2"),
        (("search.pruner=median",), "search.pruner"),
        (("search.gates=[through]",), "search.gates"),
    ],
)
def test_item11_what_a_trial_trains_is_the_key(
    tmp_path: Path, overrides: tuple[str, ...], words: str
) -> None:
    changes = differences(key_data(_spec(tmp_path)), key_data(_spec(tmp_path, *overrides)))
    assert any(words in c for c in changes), changes


def test_item11_the_command_refuses_a_changed_study_and_keeps_its_journal(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, search_spec(trials=3, epochs=1))
    code, _, err = cli("search", spec, "--trials", "1")
    assert code == 0, err
    journal = tmp_path / "runs" / "s" / "search" / "study.journal"
    before = journal.read_bytes()
    code, _, err = cli("search", spec, "--trials", "1", "--set", "train.epochs=2")
    assert code == 1, err
    assert "train.epochs was 1, now 2" in err and "Traceback" not in err
    assert journal.read_bytes() == before
    assert len(study_of(str(journal)).trials) == 1
    # another --threads is the same study: it goes on
    code, _, err = cli("search", spec, "--trials", "1", "--threads", "1")
    assert code == 0, err
    assert len(study_of(str(journal)).trials) == 2


def test_item11_a_study_of_an_older_ktg_is_keyed_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _study()
    study.enqueue_trial({})
    check_study_key(study, _spec(tmp_path), "s", "mem")
    assert "does not record the spec its 1 trials" in capsys.readouterr().err
    assert KEY_ATTR in study.user_attrs


def test_item11_a_damaged_record_of_the_key_is_refused_in_words(tmp_path: Path) -> None:
    """The hunt of this round, on what it built: a study whose recorded spec is not JSON."""
    study = _study()
    study.set_user_attr(KEY_ATTR, "0" * 16)
    study.set_user_attr(SPEC_ATTR, "{not json")
    with pytest.raises(KtgRuntimeError, match="the recorded spec is unreadable"):
        check_study_key(study, _spec(tmp_path), "s", "mem")
