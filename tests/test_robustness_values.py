"""Values never silently changed or accepted: ``--set`` values read as the spec file reads them,
an unreadable ``--set`` is a wrong command line (exit 2) reported at the override, booleans are
not numbers in component arguments, reports of thousands of issues are capped, and fp16 on a CPU
is caught by ``ktg validate``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ktg_dsl.check import check_data, check_file
from ktg_dsl.errors import SpecError, SpecIssue, report_lines

from .conftest import ROOT, base_spec

QUICKSTART = ROOT / "specs" / "quickstart.yaml"


def message_in_file(spec_file: Callable[..., Path], key: str, written: str) -> str:
    """What ``ktg validate`` says about ``key: written`` in a spec file (after the location)."""
    text = QUICKSTART.read_text().replace("  epochs: 30", f"  {key}: {written}")
    with pytest.raises(SpecError) as info:  # the reader refuses it
        check_file(spec_file(text))
    (issue,) = info.value.issues
    return issue.format().split("  ", 1)[1]


@pytest.mark.parametrize("written", ["1:30", "010", ".inf", "2024-05-01", "!!binary MTA="])
def test_set_values_are_read_as_the_file_reads_them(
    written: str, cli, spec_file: Callable[..., Path]
) -> None:
    expected = message_in_file(spec_file, "epochs", written)
    code, _, err = cli("validate", QUICKSTART, "--set", f"train.epochs={written}")
    assert code == 1
    assert err.splitlines()[0] == f"--set train.epochs={written}  {expected}"


def test_set_values_inside_a_mapping_are_checked_too(cli) -> None:
    code, _, err = cli(
        "validate", QUICKSTART, "--set", "defaults.loss={type: kl, temperature: 1:30}"
    )
    assert code == 1
    assert err.splitlines()[0] == (
        "--set defaults.loss={type: kl, temperature: 1:30}  defaults.loss.temperature: '1:30' is "
        "read by YAML 1.1 as the base-60 number 90 (write the number plainly, or quote it if it "
        "is text: '1:30')"
    )
    code, _, err = cli("validate", QUICKSTART, "--set", "train.epochs='1:30'")  # quoted: text
    assert code == 1 and "expected an integer, got '1:30'" in err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("=5", "empty key path"),
        ("a.b", "expected KEY.PATH=VALUE, got 'a.b'"),
        (".=1", "cannot read key path '.': an empty key at 1"),
        ("edges[x]=1", "cannot read key path 'edges[x]': expected [N] at 6"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "train", "search", "render"])
def test_an_unreadable_set_is_a_command_line_error(
    cli, capsys: pytest.CaptureFixture[str], command: str, override: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli(command, QUICKSTART, "--set", override)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument --set: {message} (e.g. --set train.epochs=3)" in err


def test_a_number_in_a_set_path_under_a_mapping_is_a_name(cli) -> None:
    code, _, err = cli("validate", QUICKSTART, "--set", "nodes.0.model=x")
    assert code == 1
    lines = err.splitlines()
    assert "--set nodes.0.model=x  nodes.0.model: unknown model 'x'" in err
    assert not [line for line in lines if "model" in line and line.startswith(str(QUICKSTART))]


@pytest.mark.parametrize(
    ("component", "key", "expected"),
    [
        ({"loss": {"type": "kl", "temperature": True}}, "defaults.loss.temperature", "a number"),
        ({"optimizer": {"type": "sgd", "lr": True}}, "defaults.optimizer.lr", "a number"),
        (
            {"optimizer": {"type": "adam", "betas": [False, 0.9]}},
            "defaults.optimizer.betas[0]",
            "a number",
        ),
        (
            {"scheduler": {"type": "step", "step_size": True}},
            "defaults.scheduler.step_size",
            "an integer",
        ),
    ],
)
def test_component_arguments_refuse_booleans_as_numbers(
    component: dict[str, object], key: str, expected: str
) -> None:
    report = check_data(base_spec(defaults=component))
    found = [(i.format().split("  ", 1)[1]) for i in report.errors]
    value = "true" if "True" in repr(component) else "false"
    assert f"{key}: expected {expected}, got {value}" in "\n".join(found), found


def test_model_arguments_refuse_booleans_too() -> None:
    data = base_spec()
    data["nodes"]["a"] = {"model": {"type": "small_cnn", "width": True}}
    (issue,) = check_data(data).errors
    assert issue.message == "expected an integer, got true"


@pytest.mark.slow
def test_thousands_of_issues_are_reported_as_fifty_and_a_count(cli, spec_file) -> None:
    data = base_spec()
    data["edges"] += [{"to": "a", "from": "b"}] * 20_000
    code, _, err = cli("validate", spec_file(data))
    lines = err.splitlines()
    assert code == 1 and len(lines) == 52
    assert lines[-2] == "... and 19,950 more issues (19,950 errors, 0 warnings)"
    assert lines[-1].endswith("invalid (20000 errors, 0 warnings)")
    assert len(err) < 10_000


def test_a_spec_error_holds_every_issue_but_says_fifty() -> None:
    issues = [SpecIssue(("edges", i), "duplicate edge") for i in range(60)]
    issues.append(SpecIssue(("nodes",), "alone", severity="warning"))
    error = SpecError(issues)
    assert len(error.issues) == 61 and len(str(error).splitlines()) == 52
    assert report_lines(issues)[-1] == "... and 11 more issues (10 errors, 1 warning)"
    assert report_lines(issues[:50]) == [i.format() for i in issues[:50]]


def test_fp16_on_a_cpu_is_caught_by_validate() -> None:
    fixed = check_data(base_spec(train={"epochs": 1, "precision": "fp16", "device": "cpu"}))
    assert [(i.path, i.message) for i in fixed.errors] == [
        (("train", "precision"), "fp16 needs a CUDA GPU, and train.device is cpu")
    ]
    auto = check_data(base_spec(train={"epochs": 1, "precision": "fp16"}))
    assert auto.ok
    assert [(i.path, i.severity) for i in auto.issues] == [(("train", "precision"), "warning")]
    cuda = check_data(base_spec(train={"epochs": 1, "precision": "fp16", "device": "cuda"}))
    assert cuda.ok and not cuda.issues
