"""Reading spec files: YAML and JSON, positions, and every way a file can be unreadable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ktg_dsl.errors import SpecError
from ktg_dsl.spec.loader import MAX_SPEC_BYTES, load_file, load_text


def _only_issue(exc: pytest.ExceptionInfo[SpecError]):
    assert len(exc.value.issues) == 1, exc.value.issues
    return exc.value.issues[0]


def test_yaml_positions_of_keys() -> None:
    loaded = load_text("version: 1\nnodes:\n  a:\n    model: resnet32\n", "s.yaml")
    assert loaded.data == {"version": 1, "nodes": {"a": {"model": "resnet32"}}}
    assert loaded.source.positions[("nodes", "a", "model")] == (4, 5)
    assert loaded.source.locate(("nodes", "a", "model", "depth")) == ("s.yaml", 4, 5)


def test_json_positions_and_values() -> None:
    text = (
        '{\n  "version": 1,\n  "nodes": {\n    "a": {"model": "resnet32"}\n  },\n'
        '  "l": [1, {"x": 2}]\n}'
    )
    loaded = load_text(text, "s.json", fmt="json")
    assert loaded.data == json.loads(text)
    assert loaded.source.positions[("nodes", "a", "model")] == (4, 11)
    assert loaded.source.positions[("l", 1, "x")] == (6, 13)


def test_yaml_duplicate_key_is_an_error_with_both_lines() -> None:
    with pytest.raises(SpecError) as exc:
        load_text("a: 1\nb: 2\na: 3\n", "d.yaml")
    issue = _only_issue(exc)
    assert issue.line == 3 and "duplicate key 'a'" in issue.message
    assert "line 1" in issue.message


def test_json_duplicate_key_is_an_error() -> None:
    with pytest.raises(SpecError) as exc:
        load_text('{"a": 1,\n "a": 2}', "d.json", fmt="json")
    issue = _only_issue(exc)
    assert issue.line == 2 and "duplicate key 'a'" in issue.message


def test_yaml_syntax_error_has_line_and_snippet() -> None:
    with pytest.raises(SpecError) as exc:
        load_text("version: 1\nnodes: [a, b\nedges: 3\n", "s.yaml")
    issue = _only_issue(exc)
    assert issue.line is not None and issue.file == "s.yaml"
    assert "YAML syntax error" in issue.message and "^" in issue.message


def test_yaml_tabs_get_a_hint() -> None:
    with pytest.raises(SpecError) as exc:
        load_text("nodes:\n\ta: 1\n", "s.yaml")
    assert "tabs" in (_only_issue(exc).hint or "")


def test_json_syntax_error_has_line_and_column() -> None:
    with pytest.raises(SpecError) as exc:
        load_text('{"a": 1,\n "b": }', "s.json", fmt="json")
    issue = _only_issue(exc)
    assert (issue.line, issue.col) == (2, 7)
    assert "JSON syntax error" in issue.message


@pytest.mark.parametrize(
    "tag", ["!!python/object/apply:os.system ['echo hi']", "!!python/name:os.system", "!custom 3"]
)
def test_yaml_tags_never_construct_objects(tag: str) -> None:
    with pytest.raises(SpecError) as exc:
        load_text(f"version: 1\nx: {tag}\n", "s.yaml")
    issue = _only_issue(exc)
    assert "not allowed" in issue.message and issue.line == 2


def test_alias_bomb_is_stopped() -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(SpecError) as exc:
        load_text("\n".join(lines) + "\n", "bomb.yaml")
    assert "more than" in _only_issue(exc).message


def test_merge_keys_work() -> None:
    loaded = load_text("base: &b {x: 1, y: 2}\nnode:\n  <<: *b\n  y: 3\n", "m.yaml")
    assert loaded.data["node"] == {"x": 1, "y": 3}


@pytest.mark.parametrize(
    "content, words",
    [
        ("", "empty spec"),
        ("   \n# only a comment\n", "empty spec"),
        ("- a\n- b\n", "must be a mapping"),
        ("just text\n", "must be a mapping"),
    ],
)
def test_not_a_spec(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(content)
    with pytest.raises(SpecError) as exc:
        load_file(path)
    assert words in _only_issue(exc).message
    assert not exc.value.unreadable


def test_binary_junk(tmp_path: Path) -> None:
    path = tmp_path / "junk.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SpecError) as exc:
        load_file(path)
    assert "binary" in _only_issue(exc).message


def test_latin1_text(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError) as exc:
        load_file(path)
    assert "UTF-8" in _only_issue(exc).message


def test_missing_file_and_directory_are_unreadable(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        load_file(tmp_path / "nope.yaml")
    assert exc.value.unreadable and "no such file" in _only_issue(exc).message
    with pytest.raises(SpecError) as exc:
        load_file(tmp_path)
    assert exc.value.unreadable and "directory" in _only_issue(exc).message


def test_ten_megabyte_spec_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\n" + "# padding\n" * 1_000_000)
    assert path.stat().st_size > 10 * MAX_SPEC_BYTES
    with pytest.raises(SpecError) as exc:
        load_file(path)
    assert "MB" in _only_issue(exc).message and not exc.value.unreadable


def test_json_nan_and_infinity_are_refused_in_place() -> None:
    with pytest.raises(SpecError) as exc:
        load_text('{"train": {"epochs": NaN}}', "s.json", fmt="json")
    issue = _only_issue(exc)
    assert "NaN is not a JSON number" in issue.message and (issue.line, issue.col) == (1, 22)


def test_self_referencing_alias_and_deep_nesting() -> None:
    with pytest.raises(SpecError) as exc:
        load_text("nodes: &x {a: {checkpoint: *x}}\n", "s.yaml")
    assert "refers to the block that contains it" in _only_issue(exc).message
    with pytest.raises(SpecError) as exc:
        load_text("d: " + "[" * 200 + "]" * 200 + "\n", "s.yaml")
    assert "nested more than" in _only_issue(exc).message


def test_yaml_boolean_keys_get_a_quoting_hint() -> None:
    with pytest.raises(SpecError) as exc:
        load_text("version: 1\non: 3\n", "s.yaml")
    issue = _only_issue(exc)
    assert issue.path == ("on",) and "read by YAML as the boolean true" in issue.message
    assert issue.hint == "quote it: 'on':"
    assert load_text("nodes: {1: x}\n").data == {"nodes": {"1": "x"}}  # a number key, as written


def test_huge_integers_and_control_characters() -> None:
    with pytest.raises(SpecError) as exc:
        load_text('{"epochs": 1' + "0" * 5000 + "}", "s.json", fmt="json")
    assert "4300 digits" in _only_issue(exc).message
    with pytest.raises(SpecError) as exc:
        load_text("a: 1\nb: x\x01y\n", "s.yaml")
    issue = _only_issue(exc)
    assert "not allowed in YAML" in issue.message and issue.line == 2
