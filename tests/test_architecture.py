"""The house's rules (docs/architecture.md), checked: modules stay small, functions short, and
the layers look down (import-linter's contracts in pyproject.toml)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "ktg_dsl"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Declarative argument tables: their length is the list of options, not logic.
TABLES = {"add_arguments"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_modules_stay_under_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_functions_stay_under_60_lines() -> None:
    long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and node.name not in TABLES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long, long


def test_no_grab_bag_modules() -> None:
    names = {p.stem for p in modules()}
    assert not names & {"utils", "helpers", "misc", "common_utils"}, names


@pytest.mark.skipif(
    shutil.which("lint-imports") is None
    and not (Path(sys.executable).parent / "lint-imports").exists(),
    reason="import-linter is not installed (pip install -e '.[dev]')",
)
def test_the_layers_look_down() -> None:
    res = _lint_imports(ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [tool, "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.mark.skipif(
    shutil.which("lint-imports") is None
    and not (Path(sys.executable).parent / "lint-imports").exists(),
    reason="import-linter is not installed (pip install -e '.[dev]')",
)
def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    """The layers contract names every package, so one import up the stack (the compiler
    reading the run's hardware probe, as it once did) fails, though no forbidden list
    names it."""
    shutil.copytree(ROOT / "ktg_dsl", tmp_path / "ktg_dsl")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    compiler = tmp_path / "ktg_dsl" / "compiler.py"
    compiler.write_text(compiler.read_text() + "\nfrom .run import env  # noqa: E402\n")
    res = _lint_imports(tmp_path)
    assert res.returncode != 0
    assert "Layers only look down" in res.stdout and "BROKEN" in res.stdout, res.stdout[-3000:]
    assert "ktg_dsl.compiler -> ktg_dsl.run.env" in res.stdout, res.stdout[-3000:]
