"""Read a spec file into plain data plus a source map (the line and column of every key).

YAML goes through PyYAML's *safe* composer only: no tag can construct a Python object, and the
node tree is turned into data here, so duplicate keys and alias bombs are caught with their
position. JSON goes through the standard ``json`` module (for its exact syntax errors) and then a
small position scanner that records where each key stands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from ..errors import Path, SpecError, SpecIssue

MAX_SPEC_BYTES = 1_000_000
MAX_VALUES = 100_000  # a spec with more values is an alias bomb or not a graph spec
MAX_DEPTH = 64  # specs nest a few levels; deeper is not a spec (and would exhaust the stack)

try:  # libyaml when available: same safe semantics, much faster
    _YamlLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _YamlLoader = yaml.SafeLoader


@dataclass
class SourceMap:
    """Where each value came from. Keys are key paths; values are 1-based (line, col)."""

    file: str
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    origins: dict[Path, str] = field(default_factory=dict)  # e.g. overrides: "--set a.b=1"

    def locate(self, path: Path) -> tuple[str, int | None, int | None]:
        """The file, line and column of ``path``: an override (``--set``) that wrote it or an
        ancestor of it; else one that wrote below it, if the file does not have it; else the
        nearest written ancestor in the file."""
        for cut in range(len(path), 0, -1):
            if tuple(path[:cut]) in self.origins:
                return self.origins[tuple(path[:cut])], None, None
        if tuple(path) not in self.positions:
            for written, origin in self.origins.items():
                if written[: len(path)] == tuple(path):
                    return origin, None, None
        for cut in range(len(path), -1, -1):
            prefix = tuple(path[:cut])
            if prefix in self.positions:
                line, col = self.positions[prefix]
                return self.file, line, col
        return self.file, None, None

    def attach(self, issue: SpecIssue) -> SpecIssue:
        if issue.file is not None:
            return issue
        return issue.located(*self.locate(issue.path))


@dataclass
class LoadedSpec:
    data: Any
    source: SourceMap


def _fail(
    file: str,
    message: str,
    *,
    line: int | None = None,
    col: int | None = None,
    hint: str | None = None,
    unreadable: bool = False,
) -> SpecError:
    issue = SpecIssue((), message, hint=hint, file=file, line=line, col=col)
    return SpecError([issue], unreadable=unreadable)


def read_text(path: str | FsPath) -> str:
    """The spec's text, or a SpecError saying in plain words why it cannot be had."""
    p = FsPath(path)
    name = str(path)
    if not p.exists():
        raise _fail(name, "no such file", hint="check the path", unreadable=True)
    if p.is_dir():
        raise _fail(
            name,
            "is a directory, not a spec file",
            hint="name a .yaml or .json file",
            unreadable=True,
        )
    try:
        size = p.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise _fail(
                name,
                f"spec is {size / 1e6:.1f} MB; ktg reads specs up to {MAX_SPEC_BYTES / 1e6:.0f} MB",
                hint="a graph spec is a few kB; is this the right file?",
            )
        raw = p.read_bytes()
    except PermissionError:
        raise _fail(
            name, "permission denied", hint="check the file's permissions", unreadable=True
        ) from None
    except OSError as exc:
        raise _fail(name, f"cannot read: {exc.strerror or exc}", unreadable=True) from None
    if b"\x00" in raw:
        raise _fail(name, "binary data, not a YAML or JSON text", hint="is this the right file?")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(name, "not UTF-8 text", line=line, hint="save the spec as UTF-8") from None
    if not text.strip():
        raise _fail(name, "empty spec", hint="start from specs/quickstart.yaml")
    return text


def load_file(path: str | FsPath) -> LoadedSpec:
    text = read_text(path)
    fmt = "json" if str(path).lower().endswith(".json") else "yaml"
    return load_text(text, str(path), fmt=fmt)


def load_text(text: str, file: str = "<string>", fmt: str = "yaml") -> LoadedSpec:
    if fmt == "json":
        data, source = _load_json(text, file)
    else:
        data, source = _load_yaml(text, file)
    if data is None:
        raise _fail(file, "empty spec", hint="start from specs/quickstart.yaml")
    if not isinstance(data, dict):
        raise _fail(
            file,
            f"the spec must be a mapping of keys, got a {_kind(data)}",
            line=1,
            col=1,
            hint="a spec starts with 'version: 1'",
        )
    return LoadedSpec(data, source)


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


# --------------------------------------------------------------------------- YAML


def _snippet(text: str, line: int, col: int) -> str:
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    src = lines[line - 1].rstrip()
    if len(src) > 120:
        src = src[:117] + "..."
    return f"\n    {src}\n    {' ' * max(col - 1, 0)}^"


def _load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    loader = _YamlLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            col = mark.column + 1 if mark else None
            problem = exc.problem or exc.context or "malformed YAML"
            hint = None
            if mark is not None and text[mark.index : mark.index + 1] == "\t":
                hint = "YAML indents with spaces, not tabs"
            msg = f"YAML syntax error: {problem}"
            ctx = exc.context_mark
            if exc.context and ctx is not None and mark is not None and ctx.line != mark.line:
                msg += f" ({exc.context} that starts at line {ctx.line + 1})"
            if line is not None and col is not None:
                msg += _snippet(text, line, col)
            raise _fail(file, msg, line=line, col=col, hint=hint) from None
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow
            line, col = _line_col(text, exc.position)
            raise _fail(
                file,
                f"character {exc.character!r} is not allowed in YAML",
                line=line,
                col=col,
                hint="remove control characters",
            ) from None
        except yaml.YAMLError as exc:
            raise _fail(file, f"YAML error: {exc}") from None
        source = SourceMap(file)
        if root is None:
            return None, source
        builder = _YamlBuilder(loader, source, file)
        data = builder.build(root, ())
        if builder.issues:
            raise SpecError(builder.issues)
        return data, source
    finally:
        loader.dispose()


class _YamlBuilder:
    """Node tree -> data, recording positions; duplicate keys and unsafe tags become issues."""

    def __init__(self, loader: Any, source: SourceMap, file: str) -> None:
        self.loader = loader
        self.source = source
        self.file = file
        self.issues: list[SpecIssue] = []
        self.count = 0
        self.open: set[int] = set()  # collections being built: an alias to one is a cycle

    def _issue(self, path: Path, node: yaml.Node, message: str, hint: str | None = None) -> None:
        self.issues.append(
            SpecIssue(
                path,
                message,
                hint=hint,
                file=self.file,
                line=node.start_mark.line + 1,
                col=node.start_mark.column + 1,
            )
        )

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            self._issue(
                path,
                node,
                f"the spec expands to more than {MAX_VALUES} values",
                hint="YAML aliases that repeat large blocks?",
            )
            raise SpecError(self.issues)
        self.source.positions.setdefault(
            path, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self._collection(node, path)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            self._refuse_tag(path, node)
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            self._issue(path, node, f"cannot read this value: {_first_clause(exc)}")
        return None

    def _refuse_tag(self, path: Path, node: yaml.Node) -> None:
        self._issue(
            path,
            node,
            f"YAML tag {node.tag!r} is not allowed in a spec",
            hint="specs hold plain data; register code with --plugin instead",
        )

    def _collection(self, node: yaml.Node, path: Path) -> Any:
        if node.tag not in _PLAIN_TAGS:
            self._refuse_tag(path, node)
            return None
        if id(node) in self.open:
            self._issue(
                path,
                node,
                "an alias refers to the block that contains it",
                hint="a YAML anchor cannot be used inside itself",
            )
            return None
        if len(path) > MAX_DEPTH:
            self._issue(path[:3], node, f"the spec is nested more than {MAX_DEPTH} levels deep")
            raise SpecError(self.issues)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        # Keys written in this mapping must be unique; keys merged in (<<: *base) may be
        # overridden by written ones, as YAML's merge key specifies.
        written = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        try:
            self.loader.flatten_mapping(node)
        except yaml.constructor.ConstructorError as exc:
            self._issue(path, node, f"bad merge key: {exc.problem}")
            return {}
        out: dict[Any, Any] = {}
        from_merge: set[Any] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._issue(path, key_node, "a key must be a plain name, not a list or mapping")
                continue
            try:
                key = self.loader.construct_object(key_node)
            except (yaml.YAMLError, ValueError):
                key = key_node.value
            if isinstance(key, bool) or key is None:
                # YAML 1.1 reads on/off/yes/no/y/n/null as booleans or nothing
                what = "nothing (null)" if key is None else f"the boolean {str(key).lower()}"
                self._issue(
                    (*path, key_node.value),
                    key_node,
                    f"the key {key_node.value!r} is read by YAML as {what}",
                    hint=f"quote it: '{key_node.value}':",
                )
                continue
            if not isinstance(key, str):
                key = str(key_node.value)  # 1: and 1.5: are names here, as written
            if id(key_node) not in written:
                from_merge.add(key)
            elif key in from_merge:
                from_merge.discard(key)  # a written key overrides a merged one
                del out[key]
            if key in out:
                first = self.source.positions.get((*path, key))
                where = f" (first written at line {first[0]})" if first else ""
                self._issue(
                    (*path, key),
                    key_node,
                    f"duplicate key '{key}'{where}",
                    hint="each key may appear once; merge the two entries",
                )
                continue
            self.source.positions[(*path, key)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            out[key] = self.build(value_node, (*path, key))
        return out


# --------------------------------------------------------------------------- JSON

_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(-?\d[\d.eE+-]*)|(true|false|null)|([{}\[\]:,]))')


def _load_json(text: str, file: str) -> tuple[Any, SourceMap]:
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except _NotJson as exc:
        m = re.search(rf"(?<![\w\"]){re.escape(exc.token)}(?![\w\"])", text)
        line, col = _line_col(text, m.start()) if m else (None, None)
        raise _fail(
            file,
            f"{exc.token} is not a JSON number",
            line=line,
            col=col,
            hint="JSON has no NaN or infinity; write a finite number",
        ) from None
    except json.JSONDecodeError as exc:
        msg = f"JSON syntax error: {exc.msg}" + _snippet(text, exc.lineno, exc.colno)
        raise _fail(file, msg, line=exc.lineno, col=exc.colno) from None
    except RecursionError:
        raise _fail(file, "JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise _fail(file, f"cannot read the JSON: {_first_clause(exc)}") from None
    source = SourceMap(file)
    issues: list[SpecIssue] = []
    _JsonPositions(text, source, issues).scan()
    if issues:
        raise SpecError(issues)
    return data, source


def _first_clause(exc: Exception) -> str:
    """Python's message without its advice to the programmer ("; use sys....")."""
    return str(exc).split(";")[0]


class _NotJson(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _no_constant(token: str) -> Any:
    raise _NotJson(token)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _JsonPositions:
    """Walks JSON text already known to be valid, noting where each key and value starts."""

    def __init__(self, text: str, source: SourceMap, issues: list[SpecIssue]) -> None:
        self.text = text
        self.source = source
        self.issues = issues
        self.tokens: Iterator[tuple[str, int]] = self._tokens()
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def _tokens(self) -> Iterator[tuple[str, int]]:
        pos = 0
        while True:
            m = _TOKEN.match(self.text, pos)
            if not m or m.end() == pos:
                return
            tok = m.group(m.lastindex or 0)
            yield tok, m.start(m.lastindex or 0)
            pos = m.end()

    def _where(self, offset: int) -> tuple[int, int]:
        import bisect

        line = bisect.bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1

    def scan(self) -> None:
        tok = next(self.tokens, None)
        if tok is not None:
            self._value(tok, ())

    def _value(self, tok: tuple[str, int], path: Path) -> None:
        text, offset = tok
        self.source.positions.setdefault(path, self._where(offset))
        if text == "{":
            self._object(path)
        elif text == "[":
            self._array(path)

    def _object(self, path: Path) -> None:
        seen: set[str] = set()
        while True:
            tok = next(self.tokens)
            if tok[0] == "}":
                return
            if tok[0] == ",":
                tok = next(self.tokens)
            key = json.loads(tok[0])
            kpath = (*path, key)
            line, col = self._where(tok[1])
            if key in seen:
                first = self.source.positions.get(kpath)
                where = f" (first written at line {first[0]})" if first else ""
                self.issues.append(
                    SpecIssue(
                        kpath,
                        f"duplicate key '{key}'{where}",
                        hint="each key may appear once",
                        file=self.source.file,
                        line=line,
                        col=col,
                    )
                )
            else:
                self.source.positions[kpath] = (line, col)
            seen.add(key)
            next(self.tokens)  # ':'
            self._value(next(self.tokens), kpath)

    def _array(self, path: Path) -> None:
        index = 0
        while True:
            tok = next(self.tokens)
            if tok[0] == "]":
                return
            if tok[0] == ",":
                tok = next(self.tokens)
            self._value(tok, (*path, index))
            index += 1
