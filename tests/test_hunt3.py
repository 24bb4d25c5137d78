"""Bad inputs found by the third bad-input hunt (issue 24), each test named after its item:
batches too small for a loss or a BatchNorm (1, 2), torchrun's environment variables (4),
teachers' checkpoints that load safely but are malformed (5),
a spec whose name starts with a dash given to ``--nproc`` (9). Every one ends in a message and
its exit code, with no traceback and nothing already written changed. Files read back (6, 8,
10) are in test_hunt3_files.py; the ranks' items (3, 9 end to end) in test_hunt3_ranks.py; the
search study's key (11) in test_hunt3_search.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from .conftest import small_spec, write_spec
from .test_hunt2 import spec as teacher_spec
from .test_hunt2 import weights


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err and "Error:" not in err.replace("ktg: error:", ""), err


# --------------------------------------------------------------------------- item 1


def test_item1_a_hint_between_vector_taps_on_a_last_batch_of_one(tmp_path: Path, cli: Any) -> None:
    """Was a traceback mid-epoch: 'Expected more than 1 value per channel when training'
    (the hint's regressor has a BatchNorm1d)."""
    data = small_spec(
        "hint1",
        {
            "a": {"model": {"type": "small_cnn", "width": 4}, "taps": {"v": "fc"}},
            "b": {"model": {"type": "small_cnn", "width": 4}, "taps": {"v": "fc"}},
        },
        [
            {"to": "a", "from": "labels"},
            {"to": "b", "from": "labels"},
            {"to": "a.v", "from": "b.v", "loss": "hint"},
        ],
        train_size=17,  # batches of 16: the last holds one sample
    )
    data["data"]["drop_last"] = False
    run = tmp_path / "run"
    code, _, err = cli("train", write_spec(tmp_path, data), "--run-dir", run, "--no-progress")
    assert code == 1, err
    _no_traceback(err)
    assert "the last training batch holds 1 sample(s) (17 in batches of 16)" in err
    assert "the hint adapter of edge b -> a has a BatchNorm" in err
    assert "needs at least 2 a step" in err and "data.drop_last: true" in err
    assert not run.exists()  # refused before training: nothing left behind


def test_item1_resnet18_with_the_imagenet_stem_on_a_last_batch_of_one(
    tmp_path: Path, cli: Any
) -> None:
    """50 images in batches of 7: the stem shrinks 8x8 images to 1x1 before layer4's norms."""
    data = small_spec(
        "stem",
        {"r": {"model": {"type": "resnet18", "stem": "imagenet"}}},
        [{"to": "r", "from": "labels"}],
        train_size=50,
    )
    data["data"].update(batch_size=7, drop_last=False)
    code, _, err = cli("train", write_spec(tmp_path, data), "--run-dir", tmp_path / "run")
    assert code == 1, err
    _no_traceback(err)
    assert "node 'r' ('resnet18') has a BatchNorm" in err
    assert "one value per channel per sample" in err
    data["data"]["drop_last"] = True  # the same spec without that batch is fine to start
    from ktg_dsl.check import load_spec
    from ktg_dsl.run.batch_need import batch_needs
    from ktg_dsl.run.data import load_bundle, program_for

    spec = load_spec(write_spec(tmp_path, data, "ok.yaml"))
    program = program_for(spec, None, load_bundle(spec))
    assert [need for need, _ in batch_needs(program)] == [2]


# --------------------------------------------------------------------------- item 2


def _rkd(batch: int) -> dict[str, Any]:
    data = small_spec(
        "rkd1",
        {
            "a": {"model": {"type": "small_cnn", "width": 4}},
            "b": {"model": {"type": "small_cnn", "width": 4}},
        },
        [
            {"to": "a", "from": "labels"},
            {"to": "b", "from": "labels"},
            {"to": "a", "from": "b", "loss": "rkd"},
        ],
        train_size=16,
    )
    data["data"]["batch_size"] = batch
    return data


def test_item2_rkd_on_a_batch_of_one_says_so(tmp_path: Path, cli: Any) -> None:
    """Was a NaN loss blamed on the learning rate."""
    code, _, err = cli("train", write_spec(tmp_path, _rkd(1)), "--run-dir", tmp_path / "run")
    assert code == 1, err
    _no_traceback(err)
    assert "the rkd loss of edge b -> a compares samples" in err
    assert "needs at least 2" in err  # said by validate's checks, before a run directory
    assert "NaN" not in err and "learning rate" not in err


def test_item2_rkd_declares_the_batch_it_needs() -> None:
    from ktg_dsl.components.losses import KL, Relational

    assert Relational("rkd").min_batch == 2
    assert KL("kl").min_batch == 1
    r = torch.randn(1, 5)  # what min_batch guards against: one sample has no distance
    assert torch.isnan(Relational("rkd").per_sample(r, r)).all()


@pytest.mark.slow
def test_item2_a_replica_with_nothing_to_train_on_is_refused_before_starting(
    tmp_path: Path,
) -> None:
    """--nproc 2, data_parallel 2, batch_size 1: was a NaN blamed on the learning rate."""
    from .conftest import run_ktg

    data = _rkd(2)
    data["edges"][2]["loss"] = "kl"  # with rkd, validate refuses a batch of 1 itself (exit 1)
    spec = write_spec(tmp_path, data)
    res = run_ktg(
        "train",
        spec,
        *("--nproc", "2", "--set", "train.distributed.data_parallel=2"),
        *("--set", "data.batch_size=1", "--no-progress"),
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    _no_traceback(res.stderr)
    assert "data.batch_size 1 is cut into train.distributed.data_parallel: 2 shares" in res.stderr
    assert "starting 2 processes" not in res.stderr


def test_item2_the_smallest_step_of_a_replica() -> None:
    from ktg_dsl.run.batch_need import smallest_share

    assert smallest_share(50, 7, False, 1)[0] == 1
    assert smallest_share(50, 7, True, 1)[0] == 7
    assert smallest_share(64, 16, False, 1)[0] == 16  # no partial batch
    assert smallest_share(65, 16, False, 2)[0] == 0  # a replica of the last batch gets none
    assert smallest_share(10, 16, False, 1)[0] == 10  # one batch, smaller than batch_size


# --------------------------------------------------------------------------- item 4


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"WORLD_SIZE": "2"}, "the environment sets WORLD_SIZE=2 but not RANK"),
        ({"WORLD_SIZE": "abc"}, "the environment sets WORLD_SIZE='abc': expected a whole number"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0': expected a whole number from 1"),
        ({"RANK": "x"}, "the environment sets RANK='x': expected a whole number"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK='2': expected a whole number from 0 and below 2"),
    ],
    ids=["world-without-rank", "world-abc", "world-0", "rank-x", "rank-past-world"],
)
def test_item4_torchrun_variables_are_checked_like_the_spec(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], words: str
) -> None:
    for name in ("WORLD_SIZE", "RANK", "TORCHELASTIC_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = write_spec(tmp_path, _rkd(4))
    code, _, err = cli("train", spec, "--run-dir", tmp_path / "run", "--no-progress")
    assert code == 2, err
    _no_traceback(err)
    assert words in err
    assert not (tmp_path / "run").exists()


def test_item4_the_other_variables_of_a_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    from ktg_dsl.errors import ArgumentError
    from ktg_dsl.run.distributed import env_int, restarted

    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "many")
    with pytest.raises(ArgumentError, match="TORCHELASTIC_RESTART_COUNT='many': expected a"):
        restarted()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "-1")
    with pytest.raises(ArgumentError, match="LOCAL_WORLD_SIZE='-1': expected a whole number"):
        env_int("LOCAL_WORLD_SIZE", 1, low=1)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", " 3 ")
    assert env_int("LOCAL_WORLD_SIZE", 1, low=1) == 3


def test_item4_a_huge_or_odd_value_is_shown_short_and_escaped(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hunt of this round, on what it built: the value is quoted, cut, and escaped."""
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "\x1b[31m" + "9" * 5000)
    code, _, err = cli("train", write_spec(tmp_path, _rkd(4)), "--no-progress")
    assert code == 2 and "WORLD_SIZE='\\x1b[31m999" in err and "\x1b" not in err
    assert len(err) < 400


# --------------------------------------------------------------------------- item 5


def _malformed() -> dict[str, tuple[Any, str]]:
    state = weights()
    return {
        "node-without-state": ({"format": "ktg-node"}, "'state_dict' is missing"),
        "node-state-a-number": (
            {"format": "ktg-node", "state_dict": 3},
            "'state_dict' is int '3', not a state_dict of weights",
        ),
        "run-entry-without-model": (
            {"format": "ktg-run", "engine": {"t": {"optimizer": {}}}},
            "its 'model' is missing",
        ),
        "run-entry-naming-itself": (
            {"format": "ktg-run", "nodes": {"t": "t.pt"}},
            "names itself as the state of node 't'",
        ),
        "int-keys": (
            {i: v for i, v in enumerate(state.values())},
            "is not a state_dict: key 0 is not a parameter's name",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "node-without-state",
        "node-state-a-number",
        "run-entry-without-model",
        "run-entry-naming-itself",
        "int-keys",
    ],
)
def test_item5_malformed_teacher_checkpoints_are_named(tmp_path: Path, cli: Any, case: str) -> None:
    obj, words = _malformed()[case]
    file = tmp_path / "t.pt"
    torch.save(obj, file)
    path = write_spec(tmp_path, teacher_spec(checkpoint=str(file)))
    code, _, err = cli("validate", "--deep", path)
    assert code == 1 and words in err, err
    _no_traceback(err)
    code, _, err = cli("train", path, "--run-dir", tmp_path / "run", "--no-progress")
    assert code == 1 and words in err, err
    _no_traceback(err)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- item 9


def test_item9_the_ranks_get_a_spec_whose_name_starts_with_a_dash(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranks' command line put the spec first, without `--`: they read it as an option
    and exited 2. The ranks' argv, parsed by ktg's own parser, names the same spec."""
    from ktg_dsl.cli import build_parser
    from ktg_dsl.run import ranks

    started: list[list[str]] = []
    monkeypatch.setattr(ranks, "launch", lambda n, argv, *rest: started.append(argv))
    monkeypatch.chdir(tmp_path)
    write_spec(tmp_path, _rkd(4), "-dash.yaml")
    code, _, err = cli("train", "--nproc", "2", "--set", "train.epochs=2", "--", "-dash.yaml")
    assert code == 0, err
    args = build_parser().parse_args(started[0])
    assert args.spec == "-dash.yaml" and args.set == ["train.epochs=2"]
