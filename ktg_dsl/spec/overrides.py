"""``--set key.path=value`` overrides, applied to the raw spec data before validation, so that
an override gets exactly the messages a value written in the file would get."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..errors import Path, SpecError, SpecIssue
from .locations import MISSING, schema_default
from .schema import Spec
from .yaml_reader import load_yaml

_NAME = re.compile(r"[^.\[\]]+")
_INDEX = re.compile(r"\[(-?\d+)\]")


def spec_default(path: Path) -> Any:
    """The default of a spec key, as plain data (None when it has none)."""
    value = schema_default(Spec, path)
    return None if value is MISSING else value


def parse_path(text: str) -> Path:
    """``edges[0].gate`` or ``edges.0.gate`` -> ("edges", 0, "gate"). Empty keys (``a..b``,
    a leading or trailing dot) are errors, not skipped."""
    text = text.strip()
    if not text:
        raise ValueError("empty key path")
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "[":
            m = _INDEX.match(text, pos)
            if not m:
                raise ValueError(f"cannot read key path {text!r}: expected [N] at {pos + 1}")
            parts.append(int(m.group(1)))
            pos = m.end()
            continue
        if text[pos] == ".":
            if pos == 0 or pos + 1 >= len(text) or text[pos + 1] in ".[":
                raise ValueError(f"cannot read key path {text!r}: an empty key at {pos + 1}")
            pos += 1
            continue
        m = _NAME.match(text, pos)
        if not m:
            raise ValueError(f"cannot read key path {text!r}")
        word = m.group(0).strip()
        if not word:
            raise ValueError(f"cannot read key path {text!r}: an empty key at {pos + 1}")
        parts.append(int(word) if word.isdigit() else word)
        pos = m.end()
    return tuple(parts)


def split_override(text: str) -> tuple[Path, str]:
    """``train.epochs=3`` -> (("train", "epochs"), "3"): the key path and the value's text.
    A ValueError when the override cannot be read at all (no '=', an empty key)."""
    if "=" not in text:
        raise ValueError(f"expected KEY.PATH=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    return parse_path(key), raw


def read_value(raw: str, path: Path, label: str) -> Any:
    """The value of an override, read as the spec file's YAML reader reads a value: ``1:30``,
    ``010``, ``.inf``, a date or a tag are refused with the same messages (a SpecError whose
    issues name the override ``label`` and the key path)."""
    if not raw.strip():
        return ""
    try:
        value, _ = load_yaml(raw, label)
    except SpecError as exc:
        raise SpecError(
            [replace(i, path=(*path, *i.path), file=label, line=None, col=None) for i in exc.issues]
        ) from None
    return value


def parse_override(text: str) -> tuple[Path, Any]:
    """``train.epochs=3`` -> (("train", "epochs"), 3); the value is read as YAML."""
    path, raw = split_override(text)
    return path, read_value(raw, path, f"--set {text}")


def set_path(
    data: Any, path: Path, value: Any, default_of: Callable[[Path], Any] | None = None
) -> Any:
    """A copy of ``data`` with ``value`` at ``path``. A missing key on the way starts from
    its default (``default_of``) or an empty mapping, and a component written by name
    (``loss: kl``) becomes a mapping (``{type: kl}``) to take an argument. A number under a
    mapping is a key (``nodes.0`` names the node '0')."""
    return _set(data, path, value, default_of)[0]


def _set(
    data: Any, path: Path, value: Any, default_of: Callable[[Path], Any] | None
) -> tuple[Any, Path]:
    """set_path, and the key path as written (numbers under mappings as names)."""
    root = copy.deepcopy(data)
    if not path:
        return value, path
    node: Any = root
    written: list[str | int] = []
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(node, list):
            if not isinstance(part, int) or not -len(node) <= part < len(node):
                raise KeyError(part)
            child = node[part]
        elif isinstance(node, dict):
            part = str(part)
            child = node.get(part)
            if child is None:
                start = default_of((*written, part)) if default_of else None
                child = (
                    copy.deepcopy(start)
                    if isinstance(start, dict | list | str)
                    else ([] if isinstance(nxt, int) else {})
                )
                node[part] = child
        else:
            raise KeyError(part)
        written.append(part)
        if isinstance(child, str) and isinstance(nxt, str) and nxt != "type":
            child = {"type": child}
            node[part] = child
        node = child
    last = str(path[-1]) if isinstance(node, dict) else path[-1]
    in_list = isinstance(node, list) and isinstance(last, int) and -len(node) <= last < len(node)
    if not (in_list or isinstance(node, dict)):
        raise KeyError(last)
    node[last] = value
    return root, (*written, last)


def apply_overrides(
    data: dict[str, Any],
    overrides: list[str],
    default_of: Callable[[Path], Any] | None = None,
) -> tuple[Any, dict[Path, str], list[SpecIssue]]:
    """Apply each override; returns the new data, the origin of each overridden path (for
    messages) and issues for overrides that cannot be read or placed."""
    origins: dict[Path, str] = {}
    issues: list[SpecIssue] = []
    for text in overrides:
        label = f"--set {text}"
        try:
            path, value = parse_override(text)
        except ValueError as exc:
            issues.append(SpecIssue((), str(exc), file=label, hint="e.g. --set train.epochs=3"))
            continue
        except SpecError as exc:  # a value YAML 1.1 reads as something else
            issues.extend(exc.issues)
            continue
        try:
            data, written = _set(data, path, value, default_of)
        except (KeyError, IndexError, TypeError):
            issues.append(
                SpecIssue(
                    path,
                    "cannot set this key: a parent is not a mapping or the list is shorter",
                    file=label,
                )
            )
            continue
        origins[written] = label
    return data, origins, issues
