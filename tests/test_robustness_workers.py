"""Worker processes (``ktg search --jobs N``) run this process's ktg and plugins and nothing
from the working folder: a ``yaml.py`` or ``torch.py`` planted there is never imported."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ktg_dsl.run.workers import worker_command

from .conftest import ROOT, write_spec
from .test_search import search_spec, study_of

PLANTED = ("yaml", "torch", "json", "importlib", "ktg_dsl", "ktg_test_plugin")


def plant(folder: Path) -> None:
    """Modules that would fail loudly if imported from ``folder`` (and leave a mark)."""
    for name in PLANTED:
        (folder / f"{name}.py").write_text(
            f"open({str(folder / f'IMPORTED-{name}')!r}, 'w').close()\n"
            f"raise SystemExit('the planted {name}.py in the working folder was imported')\n"
        )


def marks(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("IMPORTED-*"))


def clean_env() -> dict[str, str]:
    """No PYTHONPATH: the worker finds ktg_dsl and the plugin only where the parent did."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}


@pytest.mark.slow
def test_a_worker_imports_nothing_from_the_working_folder(tmp_path: Path) -> None:
    spec = search_spec()
    spec["edges"][2]["gate"] = {"type": "warm_start", "until": 0.5}  # the plugin's gate
    path = write_spec(tmp_path, spec)
    plant(tmp_path)
    importlib.import_module("ktg_test_plugin")  # tests/plugins: the parent has loaded it
    cmd = worker_command(
        ["validate", "--deep", path.name, "--plugin", "ktg_test_plugin"], ["ktg_test_plugin"]
    )
    res = subprocess.run(
        cmd, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "models checked on the meta device" in res.stdout  # torch was imported: the real one
    assert marks(tmp_path) == []


@pytest.mark.slow
def test_a_missing_plugin_is_still_a_clear_error(tmp_path: Path) -> None:
    cmd = worker_command(["validate", "x.yaml", "--plugin", "no_such_plugin"], ["no_such_plugin"])
    res = subprocess.run(
        cmd, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 2 and "plugin module 'no_such_plugin' not found" in res.stderr


@pytest.mark.slow
def test_search_jobs_ignore_modules_in_the_working_folder(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    spec = write_spec(tmp_path, search_spec(trials=4, epochs=1))
    plant(tmp_path)
    code, _, err = cli("search", spec, "--jobs", "2", "--plugin", "ktg_test_plugin")
    assert code == 0, err
    assert marks(tmp_path) == []
    study = study_of(str(tmp_path / "runs" / "s" / "search" / "study.journal"))
    assert len(study.trials) == 4
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2, "the worker ran trials"


@pytest.mark.slow
def test_python_dash_m_imports_nothing_more_from_the_working_folder(tmp_path: Path) -> None:
    # `python -m ktg_dsl.cli` puts the folder first on sys.path; what ktg imports after
    # starting (graphviz to render, torch to train) must still be the real one
    path = write_spec(tmp_path, search_spec())
    for name in ("graphviz", "torch"):
        (tmp_path / f"{name}.py").write_text(
            f"open({str(tmp_path / f'IMPORTED-{name}')!r}, 'w').close()\nraise SystemExit(1)\n"
        )
    env = {**clean_env(), "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-m", "ktg_dsl.cli", "render", path.name, "-o", "graph.dot"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")
    assert marks(tmp_path) == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_ctrl_c_stops_every_worker(tmp_path: Path) -> None:
    data = search_spec(trials=4, epochs=300)  # stopped in its first epochs: time to act
    data["data"]["dataset"]["train_size"] = 512
    spec = write_spec(tmp_path, data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ktg_dsl.cli", "search", str(spec), "--jobs", "2"],
        cwd=tmp_path,
        env={**clean_env(), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    trials = tmp_path / "runs" / "s" / "search" / "s"
    deadline = time.time() + 300
    while len([m for m in trials.glob("trial-*/metrics.jsonl") if m.read_text().strip()]) < 2:
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    study = study_of(str(tmp_path / "runs" / "s" / "search" / "study.journal"))
    pids = {t.user_attrs["pid"] for t in study.trials}
    assert len(pids) == 2 and not any(_alive(pid) for pid in pids), "no worker left running"
    assert all(t.state.name != "RUNNING" for t in study.trials)
