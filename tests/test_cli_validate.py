"""``ktg validate`` and ``ktg schema`` from the command line: output, exit codes, speed."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import ROOT, base_spec, run_ktg
from .datafiles import write_idx_set

SPECS = sorted((ROOT / "specs").rglob("*.yaml"))


TEACHER = Path("runs/cifar100-pretrain-resnet110/latest/best/r110.pt")  # what cifar100-kd reads


def _checkpoints(spec: Path) -> list[str]:
    import yaml

    nodes = yaml.safe_load(spec.read_text()).get("nodes", {})
    return [n["checkpoint"] for n in nodes.values() if isinstance(n, dict) and n.get("checkpoint")]


# every teacher a shipped spec reads (written by training its pre-training spec first)
TEACHERS = sorted({c for spec in SPECS for c in _checkpoints(spec)})
NEED_TEACHERS = [spec for spec in SPECS if _checkpoints(spec)]


def test_every_shipped_spec_is_valid(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # cifar100-kd.yaml needs its teacher, trained by cifar100-pretrain-resnet110.yaml
    monkeypatch.chdir(tmp_path)
    write_idx_set(tmp_path / "data" / "fashion-mnist")  # what specs/fashion/ read (no root:)
    for teacher in TEACHERS:
        Path(teacher).parent.mkdir(parents=True, exist_ok=True)
        Path(teacher).write_bytes(b"")
    code, out, err = cli("validate", *SPECS)
    assert code == 0, err
    assert out.count(": valid") == len(SPECS) >= 5


def test_on_a_fresh_clone_the_kd_spec_misses_its_teacher(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_idx_set(tmp_path / "data" / "fashion-mnist")  # installed (apt or download)
    code, out, err = cli("validate", *SPECS)
    assert code == 1
    assert (
        out.count(": valid") == len(SPECS) - len(NEED_TEACHERS) and TEACHER.as_posix() in TEACHERS
    )
    kd = ROOT / "specs" / "cifar100-kd.yaml"
    line = next(i for i, text in enumerate(kd.read_text().splitlines(), 1) if "checkpoint:" in text)
    assert (
        f"cifar100-kd.yaml:{line}:5  nodes.teacher.checkpoint: checkpoint of node 'teacher' "
        f"does not exist: {TEACHER} (train the teacher first" in err
    )
    assert "`ktg train " in err and "cifar100-pretrain-resnet110.yaml` writes it" in err
    assert f"read from the working directory, {os.getcwd()}" in err


def test_valid_with_warnings_exits_zero(cli, spec_file: Callable[..., Path]) -> None:
    data = base_spec()
    data["nodes"]["c"] = {"model": "small_cnn"}
    data["edges"].append({"to": "c", "from": "labels"})
    code, out, err = cli("validate", spec_file(data))
    assert code == 0
    assert "warning: 'c' neither teaches nor learns" in err
    assert "valid (1 warning)" in out


def test_missing_file_and_directory_exit_two(cli, tmp_path: Path) -> None:
    code, _, err = cli("validate", tmp_path / "missing.yaml")
    assert code == 2 and "no such file" in err
    code, _, err = cli("validate", tmp_path)
    assert code == 2 and "is a directory" in err


def test_worst_exit_code_over_several_files(
    cli, spec_file: Callable[..., Path], tmp_path: Path
) -> None:
    good = spec_file(base_spec(), "good.yaml")
    bad = spec_file(base_spec(train={"epochs": 0}), "bad.yaml")
    assert cli("validate", good, bad)[0] == 1
    assert cli("validate", good, tmp_path / "nope.yaml", bad)[0] == 2


def test_usage_errors_exit_two(cli) -> None:
    with pytest.raises(SystemExit) as exc:
        cli("validate")
    assert exc.value.code == 2
    assert cli()[0] == 2


def test_set_overrides(cli, spec_file: Callable[..., Path]) -> None:
    path = spec_file(base_spec())
    code, _, err = cli("validate", path, "--set", "train.epochs=0")
    assert code == 1 and "--set train.epochs=0  train.epochs: must be >= 1, got 0" in err
    assert cli("validate", path, "--set", "train.epochs=7")[0] == 0


@pytest.mark.slow
def test_deep_probes_models_on_meta(cli) -> None:
    code, out, err = cli("validate", "--deep", ROOT / "specs" / "cifar100-ktg-best.yaml")
    assert code == 0, err
    assert "models checked on the meta device" in out


def test_deep_reports_a_model_with_the_wrong_output(
    cli, spec_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ktg_dsl.registry import MODELS

    def test_bad_head(num_classes: int, in_channels: int) -> object:
        import torch

        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(num_classes + 1))

    with MODELS.registered("test_bad_head", test_bad_head):
        data = base_spec()
        data["nodes"]["b"]["model"] = "test_bad_head"
        code, _, err = cli("validate", "--deep", spec_file(data))
        assert code == 1
        assert (
            "nodes.b.model: 'test_bad_head' returns (2, 11) for a batch of 2, expected (2, 10)"
            in err
        )
    assert "test_bad_head" not in MODELS


def test_deep_probes_every_model_a_search_may_choose(cli, spec_file: Callable[..., Path]) -> None:
    """A search choice that cannot work passed validate --deep (only the nodes' own models
    were built), and every trial that drew it failed."""
    from ktg_dsl.registry import MODELS

    def test_bad_head(num_classes: int, in_channels: int) -> object:
        import torch

        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(num_classes + 1))

    with MODELS.registered("test_bad_head", test_bad_head):
        data = base_spec(search={"models": {"b": ["small_cnn", "test_bad_head"]}})
        code, _, err = cli("validate", "--deep", spec_file(data))
        assert code == 1, err
        assert "search.models.b[1]: 'test_bad_head' returns (2, 11) for a batch of 2" in err, err
        assert "search.models.b[0]" not in err
        assert cli("validate", spec_file(data))[0] == 0  # without --deep nothing is built


def test_plugin_flag(cli, spec_file: Callable[..., Path]) -> None:
    data = base_spec()
    data["edges"][2]["gate"] = {"type": "warm_start", "until": 0.3}
    path = spec_file(data)
    code, _, err = cli("validate", path, "--plugin", "ktg_test_plugin")
    assert code == 0, err
    code, _, err = cli("validate", path, "--plugin", "no_such_module_abc")
    assert code == 2 and "plugin module 'no_such_module_abc' not found" in err


def test_validate_never_imports_torch(spec_file: Callable[..., Path]) -> None:
    # The real entry point in a fresh interpreter: torch must stay out of sys.modules.
    code = (
        "import sys; from ktg_dsl.cli import main; rc = main(['validate', sys.argv[1]]);"
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    import subprocess

    res = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "specs" / "quickstart.yaml")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr


def test_entry_point_has_no_traceback_for_bad_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(os.urandom(2048))
    res = run_ktg("validate", junk)
    assert res.returncode == 1 and "Traceback" not in res.stderr


def test_schema_command_writes_the_committed_schema(cli, tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert cli("schema", "-o", out)[0] == 0
    assert json.loads(out.read_text())["title"] == "ktg spec"
    code, _, err = cli("schema", "-o", tmp_path / "no" / "dir" / "s.json")
    assert code == 1 and "does not exist" in err


def test_list_components(cli) -> None:
    code, out, _ = cli("list", "gate")
    assert code == 0 and "positive_linear" in out and "linear(start=0.0, end=1.0)" in out
    assert cli("list", "nonsense")[0] == 2
