"""A new user's first contact with the commands: ``ktg list``, one message per typo, no
follow-on warnings, plugins beside the spec, the documented plugin example, editor schema
comments."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, base_spec

Cli = Callable[..., tuple[int, str, str]]


# --------------------------------------------------------------------------- ktg list


def test_list_headings_are_plural_english(cli: Cli) -> None:
    code, out, _ = cli("list")
    assert code == 0
    headings = [line for line in out.splitlines() if not line.startswith(" ")]
    assert "losses:" in headings and "gates:" in headings and "models:" in headings
    assert not any(h.endswith("ss:") or h.endswith("sss:") for h in headings), headings


@pytest.mark.parametrize("kind", ["loss", "losses", "gate", "gates", "Models", "PRUNER"])
def test_list_takes_singular_and_plural(cli: Cli, kind: str) -> None:
    code, out, err = cli("list", kind)
    assert code == 0, err
    heading = out.splitlines()[0]
    assert heading in ("losses:", "gates:", "models:", "pruners:")
    assert out.count(":\n") == 1  # that kind only


def test_list_of_an_unknown_kind_names_the_kinds(cli: Cli) -> None:
    code, _, err = cli("list", "lossess")
    assert code == 2
    assert "unknown kind 'lossess' (did you mean 'losses'?)" in err
    assert "models, datasets, optimizers, schedulers, gates, losses" in err


# --------------------------------------------------------------------------- messages


def test_a_misspelt_required_key_is_reported_once(cli: Cli, spec_file) -> None:
    data = base_spec(train={"epoch": 3})
    data["edges"][0] = {"to": "a", "form": "labels"}
    code, _, err = cli("validate", spec_file(data))
    assert code == 1
    assert "train.epoch: unknown key 'epoch' (did you mean 'epochs'?)" in err
    assert "edges[0].form: unknown key 'form' (did you mean 'from'?)" in err
    assert "missing required key" not in err
    assert "invalid (2 errors, 0 warnings)" in err


def test_a_missing_key_without_a_lookalike_is_still_missing(cli: Cli, spec_file) -> None:
    data = base_spec(train={"epochz_total": 3})
    code, _, err = cli("validate", spec_file(data))
    assert code == 1
    assert "train.epochs: missing required key 'epochs'" in err
    assert "unknown key 'epochz_total'" in err


def test_an_edge_from_an_unknown_node_gives_no_follow_on_warnings(cli: Cli, spec_file) -> None:
    data = base_spec()
    data["nodes"]["c"] = {"model": "small_cnn"}
    data["edges"] += [{"to": "c", "from": "labels"}, {"to": "c", "from": "bogus"}]
    code, _, err = cli("validate", spec_file(data))
    assert code == 1
    assert "'c' reads from 'bogus', which is not a node" in err
    assert "neither teaches nor learns" not in err
    assert "invalid (1 error, 0 warnings)" in err


def test_a_node_reading_only_from_an_unknown_node_is_not_called_frozen(cli: Cli, spec_file) -> None:
    data = base_spec()
    data["nodes"]["c"] = {"model": "small_cnn"}
    data["edges"].append({"to": "c", "from": "bb"})
    code, _, err = cli("validate", spec_file(data))
    assert code == 1
    assert "'c' reads from 'bb', which is not a node (did you mean 'b'?)" in err
    assert "never trains" not in err and "neither teaches" not in err


def test_the_isolated_warning_stays_when_nothing_is_wrong(cli: Cli, spec_file) -> None:
    data = base_spec()
    data["nodes"]["c"] = {"model": "small_cnn"}
    data["edges"].append({"to": "c", "from": "labels"})
    code, _, err = cli("validate", spec_file(data))
    assert code == 0 and "'c' neither teaches nor learns" in err


# --------------------------------------------------------------------------- plugins


PLUGIN = '''
from ktg_dsl.components.gates import Constant, Gate
from ktg_dsl.registry import GATES


@GATES.register()
def {name}() -> Gate:
    """Half open."""
    return Constant("{name}", "parametric", value=0.5)
'''


def _forget(module: str, gate: str) -> None:
    from ktg_dsl.registry import GATES

    sys.modules.pop(module, None)
    if gate in GATES:
        GATES.unregister(gate)


def test_a_plugin_beside_you_needs_no_pythonpath(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, gate = "contact_beside_gates", "contact_half"
    (tmp_path / f"{module}.py").write_text(PLUGIN.format(name=gate))
    data = base_spec()
    data["edges"][2]["gate"] = gate
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    assert str(tmp_path) not in sys.path
    path_before = list(sys.path)
    try:
        code, out, err = cli("validate", "spec.yaml", "--plugin", module)
        assert code == 0, err
        assert "spec.yaml: valid" in out
        assert sys.path == path_before  # the folder was on the path only for the import
    finally:
        _forget(module, gate)


def test_the_current_folder_never_shadows_an_installed_module(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = "contact_shadowed_plugin"
    installed, here = tmp_path / "site", tmp_path / "here"
    installed.mkdir()
    here.mkdir()
    (installed / f"{module}.py").write_text("WHERE = 'installed'\n")
    (here / f"{module}.py").write_text("raise RuntimeError('the shadow was imported')\n")
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.chdir(here)
    try:
        code, _, err = cli("list", "gates", "--plugin", module)
        assert code == 0, err
        assert sys.modules[module].WHERE == "installed"
    finally:
        sys.modules.pop(module, None)


def test_a_missing_plugin_says_where_it_looked(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("list", "--plugin", "contact_no_such_plugin")
    assert code == 2
    assert "plugin module 'contact_no_such_plugin' not found" in err
    assert "current directory" in err and "Traceback" not in err


def test_the_plugin_example_in_gates_md_works_as_written(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = (ROOT / "docs" / "gates.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S)
    assert code is not None
    source = code.group(1)
    usage = re.search(r"ktg validate spec\.yaml --plugin (\w+)", source)
    assert usage is not None, "the example says how to use it"
    module = usage.group(1)
    (tmp_path / f"{module}.py").write_text(source)
    data = base_spec(train={"epochs": 4})
    data["edges"][2]["gate"] = {"type": "warm_start", "until": 0.3}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    from ktg_dsl.registry import GATES

    # tests/plugins/ktg_test_plugin.py registers the same example: step it aside meanwhile
    theirs = GATES.unregister("warm_start") if "warm_start" in GATES else None
    try:
        rc, _, err = cli("validate", "spec.yaml", "--plugin", module)
        assert rc == 0, err
        gate = GATES.get("warm_start").build({"until": 0.3})
        assert [gate.weight(e, 4) for e in range(4)] == [0.0, 1.0, 1.0, 1.0]
        data["edges"][2]["gate"] = {"type": "warm_start", "until": 0}
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
        rc, _, err = cli("validate", "spec.yaml", "--plugin", module)
        assert rc == 1 and "until" in err  # its arguments are checked from its signature
    finally:
        _forget(module, "warm_start")
        if theirs is not None:
            GATES.register(theirs.name, **vars(theirs.meta))(theirs.factory)


@pytest.mark.parametrize("doc", ["gates.md", "render.md", "train.md", "guide.md"])
def test_the_docs_name_only_files_that_exist(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text()
    for name in re.findall(r"\b([A-Za-z_-]+\.md)\b", text):
        assert (ROOT / name).exists() or (ROOT / "docs" / name).exists(), name


# --------------------------------------------------------------------------- the schema comment


SCHEMA = ROOT / "schemas" / "ktg-spec.schema.json"


def _schema_of(text: str, folder: Path) -> Path | None:
    match = re.match(r"# yaml-language-server: \$schema=(\S+)\n", text)
    return (folder / match.group(1)).resolve() if match else None


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_points_at_the_schema_offline(spec: Path) -> None:
    assert _schema_of(spec.read_text(), spec.parent) == SCHEMA.resolve()


def test_exported_specs_point_at_this_checkouts_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ktg_dsl.search import optimize

    for place in (ROOT / "specs" / "best.yaml", tmp_path / "deep" / "best.yaml"):
        line = optimize.schema_comment(place)
        assert "https://" not in line
        assert _schema_of(line, place.parent) == SCHEMA.resolve(), line
    assert optimize.schema_comment(ROOT / "specs" / "x.yaml").endswith(
        "$schema=../schemas/ktg-spec.schema.json\n"
    )  # the same line the shipped specs carry
    # an installed ktg without the repository's schemas/: no comment rather than a bad one
    monkeypatch.setattr(optimize, "SCHEMA_FILE", tmp_path / "none.json")
    assert optimize.schema_comment(tmp_path / "best.yaml") == ""
