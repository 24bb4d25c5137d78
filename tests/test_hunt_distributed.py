"""Bad inputs around distributed training found by the bad-input hunt: a restarted group never
takes over (nor deletes) a folder it did not claim, ``--nproc`` refuses a used ``--run-dir``
and a folder that is not a run before any rank starts, flags that would be ignored are refused,
and the spec's distributed and device values are reported in the project's words. Nothing
here starts a process group."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from ktg_dsl.check import load_spec
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.run import ranks

from .conftest import write_spec
from .test_distributed_cli import spec_data

LAUNCH = ".ktg.launch"  # ktg_dsl.run.rundir.LAUNCH


def _plain_spec(tmp_path: Path, **distributed: Any) -> Path:
    data = spec_data(epochs=1, **distributed)
    data["nodes"]["a"]["model"]["type"] = "small_cnn"
    return write_spec(tmp_path, data)


def _as_restarted_rank(monkeypatch: pytest.MonkeyPatch, run_id: str = "job-7") -> None:
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", run_id)


def test_a_restart_never_deletes_a_folder_it_did_not_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--run-dir`` naming the user's folder, first attempt refused, torchrun restarts the
    group: the restart used to delete the folder (and claim it)."""
    _as_restarted_rank(monkeypatch)
    spec = load_spec(_plain_spec(tmp_path))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(KtgRuntimeError, match="folder with files in it"):
        ranks._claim(spec, str(precious), None)
    assert (precious / "notes.txt").read_text() == "mine"


def test_a_restart_never_resumes_another_launchs_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder holding an earlier run (spec.resolved.yaml and last.pt) was resumed by a
    restarted group that had only been refused it."""
    _as_restarted_rank(monkeypatch)
    spec = load_spec(_plain_spec(tmp_path))
    old = tmp_path / "old"
    old.mkdir()
    for name in ("spec.resolved.yaml", "last.pt"):
        (old / name).write_text("an earlier run")
    (old / LAUNCH).write_text("run id another-job")
    with pytest.raises(KtgRuntimeError, match="already holds a run"):
        ranks._claim(spec, str(old), None)
    assert (old / "last.pt").read_text() == "an earlier run"


def test_a_restart_takes_back_the_folder_its_launch_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(_plain_spec(tmp_path))
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-7")
    run, resumed = ranks._claim(spec, str(tmp_path / "run"), None)
    run.release()
    assert not resumed and (tmp_path / "run" / LAUNCH).read_text() == "run id job-7"
    # the first attempt died before its first checkpoint: the restart starts it afresh
    _as_restarted_rank(monkeypatch)
    (tmp_path / "run" / "metrics.jsonl").write_text("half")
    run, resumed = ranks._claim(spec, str(tmp_path / "run"), None)
    run.release()
    assert not resumed and not (tmp_path / "run" / "metrics.jsonl").exists()
    # with a checkpoint, the restart resumes it
    for name in ("spec.resolved.yaml", "last.pt"):
        (tmp_path / "run" / name).write_text("x")
    run, resumed = ranks._claim(spec, str(tmp_path / "run"), None)
    run.release()
    assert resumed


def test_a_restart_empties_a_linked_run_dir_and_keeps_the_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--run-dir`` a link to scratch storage: the restart used to rmtree the path itself (a
    traceback on a link, the user's own folder deleted otherwise)."""
    spec = load_spec(_plain_spec(tmp_path))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    link = tmp_path / "run"
    link.symlink_to(scratch)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-7")
    run, _ = ranks._claim(spec, str(link), None)
    run.release()
    (scratch / "metrics.jsonl").write_text("half")  # the first attempt died before last.pt
    _as_restarted_rank(monkeypatch)
    run, resumed = ranks._claim(spec, str(link), None)
    run.release()
    assert not resumed and link.is_symlink() and scratch.is_dir()
    assert not (scratch / "metrics.jsonl").exists()
    assert (scratch / LAUNCH).read_text() == "run id job-7"


def test_an_anonymous_launch_is_told_apart_by_its_agent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun's default rdzv id
    assert ranks.launch_identity().startswith("agent ")
    # host, the agent's pid and its start time: a later launch that gets the same pid (PID 1
    # of a container started again) is still another launch
    _, pid, started = ranks._agent().rsplit("-", 2)
    assert pid == str(os.getppid()) and int(started) > 0


def test_an_anonymous_launch_resumes_its_default_folder_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torchrun's default ``--rdzv-id none`` and no ``--run-dir``: the restarted group finds
    the folder its first attempt claimed (it used to start over in a new timestamped one)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    spec = load_spec(_plain_spec(tmp_path))
    run, resumed = ranks._claim(spec, None, None)
    run.release()
    assert not resumed and run.path.name.startswith("torchrun-") and "none" not in run.path.name
    for name in ("spec.resolved.yaml", "last.pt"):
        (run.path / name).write_text("x")
    _as_restarted_rank(monkeypatch, "none")
    again, resumed = ranks._claim(spec, None, None)
    again.release()
    assert resumed and again.path == run.path


def test_nproc_refuses_a_used_run_dir_before_any_rank_starts(tmp_path: Path, cli: Any) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    code, _, err = cli(
        "train", _plain_spec(tmp_path), "--nproc", "2", "--run-dir", precious, "--no-progress"
    )
    assert code == 1 and "precious is a folder with files in it" in err, err
    assert "starting 2 processes" not in err
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]


def test_nproc_resume_of_a_folder_that_is_not_a_run_is_a_usage_error(
    tmp_path: Path, cli: Any
) -> None:
    """It was exit 1, 'DIR/spec.resolved.yaml is not a valid spec any more: no such file'."""
    (tmp_path / "notrun").mkdir()
    code, _, err = cli("train", "--resume", tmp_path / "notrun", "--nproc", "2")
    assert code == 2 and "is not a run directory with a checkpoint" in err, err
    assert "not a valid spec any more" not in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--approximate"], "--approximate continues a run on another data_parallel"),
        (["--max-restarts", "2"], "--max-restarts 2 restarts the processes of --nproc N"),
        (["--nproc", "1", "--max-restarts", "1"], "one process has none to restart"),
    ],
)
def test_flags_that_would_be_ignored_or_unreadable_are_refused(
    tmp_path: Path, cli: Any, args: list[str], words: str
) -> None:
    code, _, err = cli("train", _plain_spec(tmp_path), *args, "--run-dir", tmp_path / "r")
    assert code == 2 and words in err, err
    assert not (tmp_path / "r").exists()


def test_a_count_that_is_no_number_is_said_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse said 'invalid positive_int value: 'abc'' (the name of a Python function)."""
    from ktg_dsl.cli import main

    with pytest.raises(SystemExit) as exit:
        main(["train", str(_plain_spec(tmp_path)), "--nproc", "abc"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and "argument --nproc: expected a whole number, got 'abc'" in err
    assert "positive_int" not in err


def test_a_bad_distributed_value_on_resume_blames_the_override_not_the_run(
    tmp_path: Path, cli: Any
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.resolved.yaml").write_text(_plain_spec(tmp_path).read_text())
    (run / "last.pt").write_bytes(b"")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    for value, words in (
        ("train.distributed.timeout=-1", "train.distributed.timeout: must be >= 1.0, got -1"),
        ("train.distributed.timeout=1.0e-300", "timeout: must be >= 1.0, got 1e-300"),
        ("train.distributed=5", "train.distributed: expected a mapping, got 5"),
    ):
        code, _, err = cli("train", "--resume", run, "--nproc", "2", "--set", value)
        assert code == 1 and f"the --set values for {run} are not valid" in err, err
        assert words in err and "not a valid spec any more" not in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("true", "graph_groups: expected an integer, got true (true/false"),
        ("0", "graph_groups: must be >= 1, got 0"),
        ("5000", "graph_groups: must be <= 4096, got 5000"),
        # text past int()'s 4,300 digits: the project's words, not Python's
        ("'" + "9" * 5000 + "'", "graph_groups: must be <= 4096, got '99999"),
        ("'-" + "9" * 5000 + "'", "graph_groups: must be >= 1, got '-99999"),
        ("1.5", "graph_groups: expected 'auto' or an integer, got 1.5"),
        (
            "autox",
            "graph_groups: expected 'auto' or an integer, got 'autox' (did you mean 'auto'?)",
        ),
    ],
)
def test_graph_groups_gets_one_message_in_the_projects_words(
    tmp_path: Path, cli: Any, value: str, message: str
) -> None:
    """It was two messages, keyed by pydantic's internal names for the two alternatives
    (graph_groups.literal['auto'], graph_groups.function-before[_int_not_bool(), ...])."""
    code, _, err = cli(
        "validate", _plain_spec(tmp_path), "--set", f"train.distributed.graph_groups={value}"
    )
    assert code == 1 and message in err, err
    assert "literal[" not in err and "function-before" not in err
    assert "(1 error, " in err


@pytest.mark.parametrize("value", ["'2'", "2", "auto"])
def test_graph_groups_still_takes_what_it_took(tmp_path: Path, cli: Any, value: str) -> None:
    code, _, err = cli(
        "validate", _plain_spec(tmp_path), "--set", f"train.distributed.graph_groups={value}"
    )
    assert code == 0, err


@pytest.mark.parametrize(
    ("device", "hint"),
    [
        ("cuda:00", "write the GPU index without leading zeros: cuda:0"),
        ("cuda:0001", "write the GPU index without leading zeros: cuda:1"),
        ("cuda:128", "a GPU index is at most 127"),  # PyTorch would read it as cuda:-128
        ("cuda:99999999999999999999999", "a GPU index is at most 127"),
        ("cuda:\u0663", "write the GPU index in the digits 0-9"),  # an Arabic-Indic three
        ("cuda:" + "7" * 5000, "a GPU index is at most 127"),  # past int()'s 4,300 digits
        ("cuda:" + "0" * 5000 + "2", "without leading zeros: cuda:2"),
    ],
)
@pytest.mark.parametrize("key", ["train.device", "nodes.b.device"])
def test_device_names_torch_cannot_read_are_spec_errors(
    tmp_path: Path, cli: Any, device: str, hint: str, key: str
) -> None:
    """They were a RuntimeError traceback from torch.device at the start of training."""
    spec = _plain_spec(tmp_path)
    code, _, err = cli("validate", spec, "--set", f"{key}={device}")
    assert code == 1 and f"{key}: " in err and "is not a device name" in err and hint in err, err
    code, _, err = cli("train", spec, "--set", f"{key}={device}", "--run-dir", tmp_path / "r")
    assert code == 1 and "Traceback" not in err and "is not a device name" in err, err
    assert not (tmp_path / "r").exists()


def test_a_device_name_past_the_schema_is_refused_in_words() -> None:
    """Defence in depth: a name torch.device cannot read never escapes as its RuntimeError."""
    from ktg_dsl.run.env import resolve_device

    for text in ("cuda:00", "cuda:200"):
        with pytest.raises(KtgRuntimeError, match="which is not a device name"):
            resolve_device(text)


def test_a_placement_that_names_no_trained_node_is_a_warning_in_validate(
    tmp_path: Path, cli: Any
) -> None:
    """One process ignores the placement, so validate warns; --nproc still refuses it."""
    data = spec_data(epochs=1, placement={"a": 0, "bb": 1})
    data["nodes"]["a"]["model"]["type"] = "small_cnn"
    data["nodes"]["t"] = {"model": "small_cnn", "frozen": True}
    data["edges"].append({"to": "c", "from": "t"})
    data["train"]["distributed"]["placement"]["t"] = 0
    spec = write_spec(tmp_path, data)
    code, _, err = cli("validate", spec)
    assert code == 0, err
    assert "train.distributed.placement.bb: warning: 'bb' is not a node" in err
    assert "(did you mean 'b'?)" in err
    assert "train.distributed.placement.t: warning: 't' is a frozen teacher" in err
    code, _, err = cli("train", spec, "--nproc", "2", "--no-progress")
    assert code == 2 and "placement names 'bb', which is not a node (did you mean 'b'?)" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", ["train", "bench"])
def test_nproc_refuses_a_cuda_train_device_without_cuda(
    tmp_path: Path, cli: Any, command: str
) -> None:
    """One process refuses train.device: cuda without CUDA; --nproc 2 trained on the CPU."""
    spec = _plain_spec(tmp_path)
    extra = ["--run-dir", tmp_path / "r", "--no-progress"] if command == "train" else []
    code, _, err = cli(command, spec, "--nproc", "2", "--set", "train.device=cuda", *extra)
    assert code == 2 and "train.device is 'cuda' but CUDA is not available" in err, err
    assert "starting 2 processes" not in err and not (tmp_path / "r").exists()


def test_the_resume_command_keeps_every_distributed_set_quoted_for_a_shell() -> None:
    """``--set train.distributed={...}`` is a distributed key: the printed command dropped it."""
    import argparse
    import shlex

    from ktg_dsl.commands.train import _distributed_args

    sets = ["train.distributed={data_parallel: 2}", "train.distributed.timeout=60"]
    args = argparse.Namespace(set=[*sets, "train.epochs=3"], approximate=True)
    words = shlex.split(_distributed_args(args))
    assert words == ["--set", sets[0], "--set", sets[1], "--approximate"]
