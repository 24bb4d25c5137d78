"""Bad input that once hung, crashed or misled the loader: special files, deep nesting, long
lines, YAML 1.1's surprising readings, booleans taken for numbers, look-alike and invisible
characters, other encodings. Each must give a clear message with its place, and no traceback."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ktg_dsl.check import parse_data
from ktg_dsl.errors import SpecError, SpecIssue
from ktg_dsl.spec import loader, yaml_reader
from ktg_dsl.spec.loader import MAX_SPEC_BYTES, load_file, load_text, read_text

from .conftest import base_spec, run_ktg


def _only_issue(exc: pytest.ExceptionInfo[SpecError]) -> SpecIssue:
    assert len(exc.value.issues) == 1, exc.value.issues
    return exc.value.issues[0]


def _yaml_error(text: str) -> SpecIssue:
    with pytest.raises(SpecError) as exc:
        load_text(text, "s.yaml")
    return _only_issue(exc)


def _schema_issues(data: dict[str, Any]) -> list[SpecIssue]:
    spec, issues = parse_data(data)
    assert spec is None
    return issues


def _base_yaml(**changes: Any) -> str:
    return yaml.safe_dump(base_spec(**changes), sort_keys=False)


# --------------------------------------------------------------------------- special files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    # the real command in a subprocess: it used to block forever waiting for a writer
    result = run_ktg("validate", fifo, timeout=60)
    assert result.returncode == 2, result
    assert "is a FIFO (named pipe), not a spec file" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_raced_in_after_the_stat_is_refused_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    real_stat = os.stat

    def stat_says_regular(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        st = real_stat(path, *args, **kwargs)
        fields = list(st)
        fields[0] = stat.S_IFREG | 0o644
        return os.stat_result(fields)

    monkeypatch.setattr(loader.os, "stat", stat_says_regular)
    with pytest.raises(SpecError) as exc:  # opened without blocking, then fstat refuses it
        read_text(fifo)
    assert exc.value.unreadable and "FIFO" in _only_issue(exc).message


@pytest.mark.timeout(20)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused(device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    with pytest.raises(SpecError) as exc:
        load_file(device)
    issue = _only_issue(exc)
    assert exc.value.unreadable
    assert issue.message == "is a character device, not a spec file"
    assert "regular files" in (issue.hint or "")


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no UNIX sockets")
def test_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    sock = socket.socket(socket.AF_UNIX)
    try:
        try:
            sock.bind(str(path))
        except OSError:
            pytest.skip("cannot bind a UNIX socket here (path too long?)")
        with pytest.raises(SpecError) as exc:
            load_file(path)
        assert exc.value.unreadable and "is a socket" in _only_issue(exc).message
    finally:
        sock.close()


def test_devices_exit_2_from_the_cli(cli: Callable[..., tuple[int, str, str]]) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    code, _, err = cli("validate", "/dev/zero")
    assert code == 2 and "character device" in err and "Traceback" not in err


def test_links_to_spec_files_are_read_broken_links_are_named(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text(_base_yaml())
    link = tmp_path / "link.yaml"
    try:
        link.symlink_to(target)
    except OSError:
        pytest.skip("cannot make symbolic links here")
    assert load_file(link).data["name"] == "tiny"
    target.unlink()
    with pytest.raises(SpecError) as exc:
        load_file(link)
    issue = _only_issue(exc)
    assert (
        exc.value.unreadable and "symbolic link" in issue.message and "real.yaml" in issue.message
    )


def test_a_file_growing_after_the_stat_is_read_only_up_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "grows.yaml"
    path.write_text("version: 1\n" + "# padding\n" * 300_000)  # 3 MB
    real_stat, real_read = os.stat, os.read
    read_bytes = []

    def small_stat(p: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        fields = list(real_stat(p, *args, **kwargs))
        fields[6] = 100  # st_size as it was a moment ago
        return os.stat_result(fields)

    def counting_read(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        read_bytes.append(len(chunk))
        return chunk

    monkeypatch.setattr(loader.os, "stat", small_stat)
    monkeypatch.setattr(loader.os, "read", counting_read)
    with pytest.raises(SpecError) as exc:
        read_text(path)
    assert "more than 1 MB" in _only_issue(exc).message and not exc.value.unreadable
    assert sum(read_bytes) == MAX_SPEC_BYTES + 1


# --------------------------------------------------------------------------- nesting


def _deep_json(levels: int) -> str:
    return '{"version": 1, "x": ' + "[" * levels + "]" * levels + "}"


@pytest.mark.parametrize("levels", [65, 600, 2000, 100_000])
def test_deep_json_is_refused_with_its_position(levels: int) -> None:
    # 600 levels used to pass json.loads and then exhaust the stack in the position scanner
    with pytest.raises(SpecError) as exc:
        load_text(_deep_json(levels), "d.json", fmt="json")
    issue = _only_issue(exc)
    assert issue.message == "the spec is nested more than 64 levels deep"
    assert (issue.line, issue.col) == (1, 21 + 64)
    assert issue.path == ("x", 0, 0)


@pytest.mark.parametrize("levels", [600, 2000, 100_000])
def test_deep_yaml_is_refused_with_its_position(levels: int) -> None:
    issue = _yaml_error("x: " + "[" * levels + "]" * levels + "\n")
    assert issue.message == "the spec is nested more than 64 levels deep"
    assert issue.line == 1 and issue.col is not None


@pytest.mark.slow
def test_deep_yaml_with_the_pure_python_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_reader, "_YamlLoader", yaml.SafeLoader)
    for levels in (100, 600, 5000):
        issue = _yaml_error("x: " + "[" * levels + "]" * levels + "\n")
        assert "nested more than 64 levels" in issue.message


def test_a_deep_stack_at_the_call_does_not_matter() -> None:
    # the JSON scanner is iterative: even called near the recursion limit it cannot overflow
    def nested(n: int) -> None:
        if n:
            return nested(n - 1)
        load_text(json.dumps({"a": [[[[{"b": [1, 2, {"c": 3}]}]]]]}), "s.json", fmt="json")
        return None

    nested(sys.getrecursionlimit() - 150)


# --------------------------------------------------------------------------- long lines


def _caret_target(message: str) -> str:
    """The character the snippet's caret points at."""
    src, caret = message.split("\n")[1:3]
    assert len(src) <= 4 + 80 + 6 and len(caret) <= 4 + 80 + 4, (len(src), len(caret))
    return src[len(caret) - 1]


def test_json_syntax_error_far_along_a_line_shows_a_short_snippet() -> None:
    text = '{"version": 1, "a": ' + " " * 180_000 + "x}"
    with pytest.raises(SpecError) as exc:
        load_text(text, "s.json", fmt="json")
    issue = _only_issue(exc)
    assert (issue.line, issue.col) == (1, 180_021)
    assert len(issue.format()) < 400
    assert "..." in issue.message and _caret_target(issue.message) == "x"


def test_yaml_syntax_error_far_along_a_line_shows_a_short_snippet() -> None:
    issue = _yaml_error("a: [" + "1, " * 60_000 + "}\n")
    assert issue.col == 180_005
    assert len(issue.format()) < 400
    assert _caret_target(issue.message) == "}"


def test_short_lines_and_tabs_keep_the_caret_in_place() -> None:
    issue = _yaml_error("a: 1\nb:\t[1,\t2 }\n")
    assert _caret_target(issue.message) == "}"
    with pytest.raises(SpecError) as exc:
        load_text('{\n\t"a":\t1,\t}', "s.json", fmt="json")
    json_issue = _only_issue(exc)
    assert (json_issue.line, json_issue.col) == (2, 10)
    assert _caret_target(json_issue.message) == "}"


# --------------------------------------------------------------------------- YAML 1.1


@pytest.mark.parametrize(
    "value, words, hint",
    [
        ("1:30", "'1:30' is read by YAML 1.1 as the base-60 number 90", "quote it"),
        ("-1:30:00", "base-60 number -5400", "write the number plainly"),
        ("1:30.5", "base-60 number 90.5", "quote it"),
        ("010", "'010' is read by YAML 1.1 as the octal number 8", "write 10"),
        ("-0_17", "octal number -15", "write -17"),
        (".inf", "'.inf' is read by YAML as infinity; numbers must be finite", "finite"),
        ("-.Inf", "as infinity", "finite"),
        (".NaN", "as not-a-number (NaN)", "finite"),
        ("2001-12-14", "'2001-12-14' is read by YAML 1.1 as a date", "quote it"),
        ("2001-12-14 21:59:43.10 -5", "as a date", "quote it"),
        ("=", "'=' is a YAML 1.1 special key, not a value", "quote it: '='"),
        ("<<", "'<<' is a YAML 1.1 special key", "quote it"),
        ("!!binary dGlueQ==", "YAML tag 'tag:yaml.org,2002:binary' is not allowed", "base64"),
        ("!!bool maybe", "cannot read 'maybe' as !!bool", "remove the tag"),
        ("!!int x", "cannot read 'x' as !!int", "remove the tag"),
        ("!!timestamp soon", "as a date", "quote it"),
    ],
)
def test_yaml_11_readings_are_refused_in_place(value: str, words: str, hint: str) -> None:
    issue = _yaml_error(f"version: 1\ntrain:\n  epochs: {value}\n")
    assert issue.path == ("train", "epochs")
    assert words in issue.message
    assert hint in (issue.hint or "")
    assert (issue.line, issue.col) == (3, 11)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("07", 7),  # octal and decimal agree
        ("0", 0),
        ("0x1f", 31),
        ("1_000", 1000),
        ("'010'", "010"),
        ("'1:30'", "1:30"),
        ("!!str 010", "010"),
        ("'2001-12-14'", "2001-12-14"),
        ("5e-4", "5e-4"),  # a string to YAML; the schema reads it as a number
        ("yes", True),  # booleans stay booleans: switches take them, numbers refuse them
    ],
)
def test_plain_values_still_load(value: str, expected: Any) -> None:
    assert load_text(f"v: {value}\n").data == {"v": expected}


def test_yaml_readings_of_keys_stay_names_but_tags_are_refused() -> None:
    data = load_text("nodes: {1:30: x, 010: y, 2001-12-14: z, '=': w}\n").data
    assert data == {"nodes": {"1:30": "x", "010": "y", "2001-12-14": "z", "=": "w"}}
    for key in ("!!binary aGk=", "!!python/name:os.system"):
        issue = _yaml_error(f"a: 1\n{key} : 2\n")
        assert "is not allowed in a spec" in issue.message and issue.line == 2


def test_all_loader_issues_are_reported_together(spec_file: Callable[..., Path]) -> None:
    path = spec_file(
        "version: 1\nname: !!binary dGlueQ==\nseed: 010\ndescription: 2024-01-01\n"
        "data: {dataset: digits, batch_size: 1:04}\ntrain: {epochs: .inf}\n"
    )
    with pytest.raises(SpecError) as exc:
        load_file(path)
    lines = [i.line for i in exc.value.issues]
    assert lines == [2, 3, 4, 5, 6]


# --------------------------------------------------------------------------- booleans


@pytest.mark.parametrize(
    "changes, path, expected",
    [
        ({"train": {"epochs": True}}, ("train", "epochs"), "an integer"),
        ({"data": {"dataset": "digits", "batch_size": True}}, ("data", "batch_size"), "an integer"),
        ({"seed": False}, ("seed",), "an integer"),
        ({"train": {"epochs": 3, "grad_clip": True}}, ("train", "grad_clip"), "a number"),
        ({"train": {"epochs": 3, "eval_every": True}}, ("train", "eval_every"), "an integer"),
        ({"version": True}, ("version",), "1"),
        ({"nodes": {"a": {"model": "small_cnn", "num_classes": True}}}, None, "an integer"),
        ({"search": {"trials": False}}, ("search", "trials"), "an integer"),
        ({"search": {"params": [{"path": "seed", "low": True, "high": 2}]}}, None, "a number"),
    ],
)
def test_booleans_are_not_numbers(
    changes: dict[str, Any], path: tuple[Any, ...] | None, expected: str
) -> None:
    issues = _schema_issues(base_spec(**changes))
    issue = next(i for i in issues if "got true" in i.message or "got false" in i.message)
    if path is not None:
        assert issue.path == path
    assert issue.message.startswith(f"expected {expected}, got ")
    assert "booleans" in (issue.hint or "") and "write a number" in (issue.hint or "")


@pytest.mark.slow
def test_yaml_yes_for_a_number_and_json_true_for_a_number(tmp_path: Path) -> None:
    for name, text in [
        ("s.yaml", _base_yaml().replace("batch_size: 16", "batch_size: yes")),
        ("s.json", json.dumps(base_spec(data={"dataset": "digits", "batch_size": True}))),
    ]:
        path = tmp_path / name
        path.write_text(text)
        result = run_ktg("validate", path, timeout=120)
        assert result.returncode == 1, result
        assert "data.batch_size: expected an integer, got true" in result.stderr


def test_set_true_for_a_number_is_refused(
    spec_file: Callable[..., Path], cli: Callable[..., tuple[int, str, str]]
) -> None:
    path = spec_file(base_spec())
    code, _, err = cli("validate", path, "--set", "data.batch_size=true")
    assert code == 1
    assert "--set data.batch_size=true  data.batch_size: expected an integer, got true" in err


def test_switches_and_booleans_keep_taking_yaml_booleans() -> None:
    text = _base_yaml().replace(
        "epochs: 3", "epochs: 3\n  compile: off\n  channels_last: on\n  deterministic: yes"
    )
    loaded = load_text(text)
    spec, issues = parse_data(loaded.data, loaded.source)
    assert spec is not None and not [i for i in issues if i.is_error]
    assert (spec.train.compile, spec.train.channels_last) == ("off", "on")
    assert spec.train.deterministic is True


def test_numbers_are_not_booleans() -> None:
    issues = _schema_issues(base_spec(data={"dataset": "digits", "download": 1}))
    assert [i.message for i in issues] == ["expected true or false, got 1"]


def test_strings_that_yaml_made_booleans_or_nothing_get_a_hint() -> None:
    issue = _schema_issues(base_spec(name=True))[0]
    assert issue.message == "expected a string, got true" and "quote it" in (issue.hint or "")
    issue = _schema_issues(base_spec(train=None))[0]
    assert issue.message == "expected a mapping, got null"
    assert "empty" in (issue.hint or "")


# --------------------------------------------------------------------------- look-alikes


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_cyrillic_letter_in_a_key_is_named(fmt: str) -> None:
    data = base_spec()
    data["n\u043edes"] = data.pop("nodes")
    text = json.dumps(data, ensure_ascii=False) if fmt == "json" else yaml.safe_dump(data)
    with pytest.raises(SpecError) as exc:
        load_text(text, f"s.{fmt}", fmt=fmt)
    issue = _only_issue(exc)
    assert issue.message == (
        "the key 'n\u043edes' is not plain text: its character 2 is U+043E CYRILLIC SMALL "
        "LETTER O, which looks like 'o'"
    )
    assert issue.hint == "retype it as 'nodes'"
    assert issue.line is not None


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_zero_width_space_in_a_key_is_named_and_shown(fmt: str) -> None:
    data = base_spec()
    data["nodes"]["b\u200b"] = data["nodes"].pop("b")
    text = json.dumps(data) if fmt == "json" else yaml.safe_dump(data)
    with pytest.raises(SpecError) as exc:
        load_text(text, f"s.{fmt}", fmt=fmt)
    issue = _only_issue(exc)
    assert "character 2 is the invisible U+200B ZERO WIDTH SPACE" in issue.message
    assert issue.hint == "retype it as 'b'"
    # printed, the invisible character is spelled out
    assert "nodes.b\\u200b: the key 'b\\u200b'" in issue.format()


def test_names_in_other_scripts_are_fine() -> None:
    data = base_spec(
        nodes={"\u043c\u043e\u0439": {"model": "small_cnn"}, "caf\u00e9": {"model": "small_cnn"}},
        edges=[{"to": "\u043c\u043e\u0439", "from": "labels"}],
    )
    assert load_text(json.dumps(data), "s.json", fmt="json").data == data
    spec, issues = parse_data(data)
    assert spec is not None and not [i for i in issues if i.is_error]


def test_unknown_key_from_python_data_names_the_odd_character() -> None:
    data = base_spec()
    data["data"]["b\u0430tch_size"] = 3
    issue = _schema_issues(data)[0]
    assert issue.message == (
        "unknown key 'b\u0430tch_size': its character 2 is U+0430 CYRILLIC SMALL LETTER A, "
        "which looks like 'a'"
    )
    assert issue.hint == "retype it as 'batch_size'"


@pytest.mark.parametrize(
    "changes, path, words, hint",
    [
        (
            {"nodes": {"a": {"model": "small_\u0441nn"}, "b": {"model": "small_cnn"}}},
            ("nodes", "a", "model"),
            "the model name 'small_\u0441nn' is not plain text: its character 7 is U+0441",
            "retype it as 'small_cnn'",
        ),
        (
            {"defaults": {"loss": {"type": "k\u200bl"}}},
            ("defaults", "loss"),
            "the loss name 'k\u200bl' is not plain text: its character 2 is the invisible",
            "retype it as 'kl'",
        ),
        (
            {"edges": [{"to": "\u0430", "from": "labels"}]},
            ("edges", 0, "to"),
            "the node name '\u0430' is not plain text: its character 1 is U+0430",
            "retype it as 'a'",
        ),
        (
            {"train": {"epochs": 3, "precision": "f\u044016"}},
            ("train", "precision"),
            "expected 'auto', 'fp32', 'bf16' or 'fp16', got 'f\u044016'",
            "retype it as 'fp16'",
        ),
        (
            {"defaults": {"optimizer": {"type": "sgd", "lr": "\u22120.1"}}},
            ("defaults", "optimizer", "lr"),
            "expected a number, got '\u22120.1'",
            "U+2212 MINUS SIGN, which looks like '-': retype it as '-0.1'",
        ),
    ],
)
def test_look_alike_names_and_values_are_named(
    changes: dict[str, Any], path: tuple[Any, ...], words: str, hint: str
) -> None:
    spec, issues = parse_data(base_spec(**changes))
    if spec is not None:  # component arguments are checked in the component pass
        from ktg_dsl.check import check_spec

        issues = check_spec(spec).issues
    issue = next(i for i in issues if i.path == path)
    assert words in issue.message
    assert hint in (issue.hint or "")


def test_printed_issues_never_carry_terminal_controls() -> None:
    issue = SpecIssue(("nodes", "\x1b[2Jx\u202e"), "unknown key '\x1b[2Jx\u202e'", hint="\u200b")
    text = issue.format()
    assert text.isprintable()
    assert "\\x1b[2Jx\\u202e" in text and "\\u200b" in text
    assert SpecIssue((), "two\nlines").format() == "<spec>  two\nlines"


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    "codec, words",
    [
        ("utf-16", "UTF-16 text (little-endian, with a byte-order mark)"),
        ("utf-16-le", "UTF-16 text (little-endian, no byte-order mark)"),
        ("utf-16-be", "UTF-16 text (big-endian, no byte-order mark)"),
        ("utf-32", "UTF-32 text (little-endian, with a byte-order mark)"),
        ("utf-32-be", "UTF-32 text (big-endian, no byte-order mark)"),
    ],
)
def test_utf16_and_utf32_are_named(tmp_path: Path, codec: str, words: str) -> None:
    path = tmp_path / "wide.yaml"
    path.write_bytes(_base_yaml().encode(codec))
    with pytest.raises(SpecError) as exc:
        load_file(path)
    issue = _only_issue(exc)
    assert issue.message == f"the file is {words}; ktg reads UTF-8"
    assert "save the spec as UTF-8" in (issue.hint or "")
    assert not exc.value.unreadable


def test_binary_junk_is_still_binary(tmp_path: Path) -> None:
    path = tmp_path / "junk.yaml"
    path.write_bytes(b"\x00\x01\x02\x03" * 300 + bytes(range(256)))
    with pytest.raises(SpecError) as exc:
        load_file(path)
    assert "binary data" in _only_issue(exc).message


# --------------------------------------------------------------------------- more of the same


def test_long_keys_are_refused_and_messages_stay_short() -> None:
    key = "k" * 100_000
    for text, fmt in [
        (json.dumps({"version": 1, key: 1}), "json"),
        (f"version: 1\n? {key}\n: 1\n", "yaml"),
    ]:
        with pytest.raises(SpecError) as exc:
            load_text(text, f"s.{fmt}", fmt=fmt)
        issue = _only_issue(exc)
        assert "a key of 100,000 characters" in issue.message
        assert len(issue.format()) < 300


def test_yaml_line_breaks_editors_do_not_show_are_refused() -> None:
    for char, name in [("\x85", "NEXT LINE"), ("\u2028", "LINE SEPARATOR")]:
        issue = _yaml_error(f"version: 1\nname: a{char}b: 2\n")
        assert f"{name} is a line break to YAML" in issue.message
        assert (issue.line, issue.col) == (2, 8)


def test_byte_order_mark_in_the_middle_is_named() -> None:
    issue = _yaml_error("version: 1\n\ufeffname: x\n")
    assert "line 2, column 1 has the invisible U+FEFF BYTE ORDER MARK" in (issue.hint or "")
    assert "two files joined" in (issue.hint or "")
    with pytest.raises(SpecError) as exc:
        load_text('{"version": 1,\n\ufeff"name": "x"}', "s.json", fmt="json")
    assert "U+FEFF BYTE ORDER MARK" in (_only_issue(exc).hint or "")


@pytest.mark.parametrize(
    "text, fmt, words",
    [
        ("version: 1\nseed:\u00a00\nname: x\n", "yaml", "U+00A0 NO-BREAK SPACE, which looks like"),
        ("version: 1\nseed\uff1a0\nname: x\n", "yaml", "U+FF1A FULLWIDTH COLON, which looks like"),
        ('{"version":\u00a01}', "json", "column 12 has U+00A0 NO-BREAK SPACE"),
        ('{"name": \u201cx\u201d}', "json", "U+201C LEFT DOUBLE QUOTATION MARK, which looks like"),
    ],
)
def test_syntax_errors_name_look_alike_characters(text: str, fmt: str, words: str) -> None:
    with pytest.raises(SpecError) as exc:
        load_text(text, f"s.{fmt}", fmt=fmt)
    issue = _only_issue(exc)
    assert "syntax error" in issue.message and words in (issue.hint or "")


def test_json_half_surrogate_pairs_are_refused() -> None:
    with pytest.raises(SpecError) as exc:
        load_text('{"version": 1,\n "name": "\\ud83d"}', "s.json", fmt="json")
    issue = _only_issue(exc)
    assert issue.path == ("name",) and (issue.line, issue.col) == (2, 10)
    assert "half of a UTF-16 surrogate pair" in issue.message
    pair = load_text('{"name": "\\ud83d\\ude00"}', "s.json", fmt="json")  # a whole pair is fine
    assert pair.data == {"name": "\U0001f600"}


def test_crlf_line_endings_keep_lines_and_columns() -> None:
    loaded = load_text("version: 1\r\nnodes:\r\n  a: {model: x}\r\n", "s.yaml")
    assert loaded.source.positions[("nodes", "a", "model")] == (3, 7)
    issue = _yaml_error("version: 1\r\nnodes: [a,\r\n  b\r\nc: 1\r\n")
    assert issue.line == 4
    loaded = load_text('{\r\n  "a": {\r\n    "b": 1}}', "s.json", fmt="json")
    assert loaded.source.positions[("a", "b")] == (3, 5)
    with pytest.raises(SpecError) as exc:
        load_text('{\r\n  "a": 1,,\r\n}', "s.json", fmt="json")
    json_issue = _only_issue(exc)
    assert (json_issue.line, json_issue.col) == (2, 10)
    assert _caret_target(json_issue.message) == ","


def test_tab_hint_is_given_once() -> None:
    issue = _yaml_error("nodes:\n\ta: 1\n")
    assert issue.hint == "YAML indents with spaces, not tabs"
    assert "\t" not in issue.message
