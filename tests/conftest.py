"""Shared helpers: a small valid spec to mutate, spec files on disk, the CLI in-process."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"  # ktg_test_plugin: models and gates the tests plug in
sys.path.insert(0, str(Path(__file__).resolve().parent / "plugins"))


def pytest_configure(config: pytest.Config) -> None:
    """The suite computes with the threads ktg's ``auto`` picks when it starts (one thread on a
    machine that is busy then), in this process and in every ktg it starts: they inherit the
    count through OMP_NUM_THREADS instead of each measuring the load again. A user's own
    OMP_NUM_THREADS is kept; tests of ``auto`` itself clear it."""
    from ktg_dsl.run.threads import apply_threads

    choice = apply_threads("auto")
    os.environ.setdefault("OMP_NUM_THREADS", str(choice.count))


BASE: dict[str, Any] = {
    "version": 1,
    "name": "tiny",
    "seed": 0,
    "data": {"dataset": "digits", "batch_size": 16},
    "train": {"epochs": 3},
    "nodes": {"a": {"model": "small_cnn"}, "b": {"model": "small_cnn"}},
    "edges": [
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "a", "from": "b"},
        {"to": "b", "from": "a"},
    ],
}


def base_spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def small_spec(
    name: str,
    nodes: dict[str, Any],
    edges: list[dict[str, Any]] | None = None,
    *,
    train_size: int = 64,
    epochs: int = 1,
    classes: int = 4,
    **top: Any,
) -> dict[str, Any]:
    """A spec on tiny synthetic data (8x8 images, batches of 16), fp32 on the CPU; ``top``
    adds top-level sections (``gate_matrix=...``)."""
    data: dict[str, Any] = {
        "version": 1,
        "name": name,
        "data": {
            "dataset": {
                "type": "synthetic",
                "num_classes": classes,
                "image_size": 8,
                "train_size": train_size,
            },
            "batch_size": 16,
        },
        "train": {"epochs": epochs, "precision": "fp32", "device": "cpu"},
        "nodes": nodes,
    }
    if edges is not None:
        data["edges"] = edges
    return {**data, **top}


def write_spec(folder: Path, data: dict[str, Any], name: str = "spec.yaml") -> Path:
    """Dump a spec as YAML into ``folder``; returns its path."""
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def spec_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec (a dict, dumped as YAML, or text) and return its path."""

    def write(content: dict[str, Any] | str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        if isinstance(content, dict):
            content = yaml.safe_dump(content, sort_keys=False)
        path.write_text(content)
        return path

    return write


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``ktg ARGS`` in-process: (exit code, stdout, stderr)."""
    from ktg_dsl.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def plugin_path() -> str:
    """PYTHONPATH for a ktg that imports the test plugins: this checkout first (a second
    checkout beside an editable install of another tests its own code), then the plugins."""
    return os.pathsep.join([str(ROOT), str(PLUGINS), os.environ.get("PYTHONPATH", "")])


def run_ktg(
    *args: Any, cwd: Path | None = None, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``ktg`` entry point in a subprocess; with ``env`` (added to this process's
    environment) the test plugins can be imported (``--plugin ktg_test_plugin``)."""
    return subprocess.run(
        [sys.executable, "-m", "ktg_dsl.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=None if env is None else {**os.environ, "PYTHONPATH": plugin_path(), **env},
    )


def start_ktg_marked(
    cwd: Path, mark: Path, after: int, *args: Any, timeout: float = 300
) -> subprocess.Popen[str]:
    """Start ``ktg ARGS --plugin ktg_test_plugin`` whose ``marked_cnn`` writes its process id
    to ``mark`` at its ``after``-th training forward and waits there, and return once it has:
    an event to act on in the middle of an epoch, instead of a sleep. The run stays at that
    forward until the test calls ``release(mark)``, so a fast run cannot end before the test
    acts (a busy machine may keep the test from running for seconds)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ktg_dsl.cli", *map(str, args), "--plugin", "ktg_test_plugin"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": plugin_path(),
            "KTG_TEST_MARK": str(mark),
            "KTG_TEST_MARK_AFTER": str(after),
        },
    )
    deadline = time.time() + timeout
    while not mark.exists():
        if proc.poll() is not None:
            raise AssertionError(f"ktg ended before the mark: {proc.communicate()}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the mark")
        time.sleep(0.02)
    return proc


STOPPING = "stopping after this batch"  # what a run prints on stdout when asked to stop


def release(mark: Path, proc: subprocess.Popen[str] | None = None, seen: str = "") -> None:
    """Let the run held at ``mark`` go on; with ``proc`` and ``seen``, only once ``seen`` is
    on its stdout (e.g. ``STOPPING``: a rank has taken the signal the test sent, which a
    launcher passes on to its ranks at its own pace)."""
    if proc is not None and seen:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # until the line, or the end of the output
            lines.append(line)
            if seen in line:
                break
        else:
            raise AssertionError(f"ktg never printed {seen!r}: {''.join(lines)}")
    Path(f"{mark}.go").touch()
