"""Issue 24, the ranks of ``ktg train --nproc N`` end to end (slow: each starts ranks):
item 3, a SIGKILL of the launcher no longer leaves both ranks training (they trained ~105 s
more, holding the run's lock): each rank watches the process that started it, stops, saves and
exits; item 9, a spec whose name starts with a dash reaches the ranks as that name."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ktg_dsl.run import checkpoint as ckpt
from ktg_dsl.run.rundir import claim_existing

from .conftest import STOPPING, release, run_ktg, start_ktg_marked, write_spec
from .test_distributed_cli import spec_data


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


@pytest.mark.slow
def test_item3_ranks_end_with_their_killed_launcher(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, spec_data(epochs=30))
    run = tmp_path / "run"
    launcher = start_ktg_marked(
        tmp_path,
        tmp_path / "going",
        40,
        "train",
        spec,
        "--nproc",
        "2",
        "--run-dir",
        run,
        "--no-progress",
    )
    ranks = [p for p in _children(launcher.pid) if "ktg_dsl.cli:main" in _cmdline(p)]
    assert len(ranks) == 2, ranks
    launcher.send_signal(signal.SIGKILL)  # it cannot pass anything on
    launcher.wait()
    release(tmp_path / "going", launcher, STOPPING)  # once a rank saw its launcher go
    deadline = time.time() + 180
    while any(_alive(p) for p in ranks) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in ranks), "a rank outlived its launcher"
    _, err = launcher.communicate(timeout=30)
    assert "its launcher" in err and "is gone; stopping after this batch and saving" in err
    manifest = ckpt.load(run / "last.pt")
    assert 0 < manifest["epoch"] < 30 or manifest["step"] > 0
    claim_existing(str(run)).release()  # the run's lock went with the ranks


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.slow
def test_item9_a_spec_named_with_a_leading_dash_trains_on_the_ranks(tmp_path: Path) -> None:
    """The ranks got `train -dash.yaml` (no `--`) and exited 2; one process accepted it."""
    data = spec_data(epochs=1)
    data["nodes"]["a"]["model"]["type"] = "small_cnn"
    data["data"]["dataset"]["train_size"] = 64
    write_spec(tmp_path, data, "-dash.yaml")
    res = run_ktg(
        *("train", "--nproc", "2", "--run-dir", tmp_path / "run", "--no-progress"),
        *("--", "-dash.yaml"),
        cwd=tmp_path,
        timeout=300,
        env={},
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "run" / "last.pt").exists()
    assert os.path.getsize(tmp_path / "run" / "metrics.jsonl") > 0
