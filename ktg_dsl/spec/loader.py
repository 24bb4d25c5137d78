"""Read a spec file into plain data plus a source map (the line and column of every key).

YAML goes through PyYAML's *safe* composer only: no tag can construct a Python object, and the
node tree is turned into data here, so duplicate keys and alias bombs are caught with their
position. JSON goes through the standard ``json`` module (for its exact syntax errors) and then a
small position scanner that records where each key stands.
"""

from __future__ import annotations

import bisect
import codecs
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from ..errors import Path, SpecError, SpecIssue
from .messages import char_name, describe_odd, odd_characters, plain_spelling, shorten

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
    """The spec's text, or a SpecError saying in plain words why it cannot be had.

    Only a regular file (or a link to one) is read: a FIFO would block forever and a device such
    as /dev/zero never ends, and both report a size of 0. The type is checked before opening,
    the file is opened without blocking and checked again, and at most the size limit plus one
    byte is read, so a file that grows meanwhile is still refused."""
    name = str(path)
    try:
        st = os.stat(path)  # follows links: a link to a spec file is a spec file
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            target = os.readlink(path)
            raise _fail(
                name,
                f"is a symbolic link to '{target}', which does not exist",
                hint="check where the link points",
                unreadable=True,
            ) from None
        raise _fail(name, "no such file", hint="check the path", unreadable=True) from None
    except PermissionError:
        raise _fail(
            name, "permission denied", hint="check the file's permissions", unreadable=True
        ) from None
    except OSError as exc:  # a link loop, a name too long, ...
        raise _fail(name, f"cannot read: {exc.strerror or exc}", unreadable=True) from None
    except ValueError:  # an embedded NUL character (only from the Python API)
        raise _fail(name, "the path contains a NUL character", unreadable=True) from None
    _check_regular(name, st.st_mode)
    if st.st_size > MAX_SPEC_BYTES:
        raise _too_big(name, f"{st.st_size / 1e6:.1f} MB")
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_NOCTTY | _O_BINARY)
        try:
            _check_regular(name, os.fstat(fd).st_mode)  # replaced since the stat above?
            raw = _read_at_most(fd, MAX_SPEC_BYTES + 1)
        finally:
            os.close(fd)
    except PermissionError:
        raise _fail(
            name, "permission denied", hint="check the file's permissions", unreadable=True
        ) from None
    except OSError as exc:
        raise _fail(name, f"cannot read: {exc.strerror or exc}", unreadable=True) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise _too_big(name, f"more than {MAX_SPEC_BYTES / 1e6:.0f} MB")
    return _decode(name, raw)


_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not wait for a writer
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows


def _check_regular(name: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise _fail(
            name,
            "is a directory, not a spec file",
            hint="name a .yaml or .json file",
            unreadable=True,
        )
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((k for test, k in kinds if test(mode)), "a special file")
    raise _fail(
        name,
        f"is {kind}, not a spec file",
        hint="ktg reads specs from regular files; save the spec to a file first",
        unreadable=True,
    )


def _too_big(name: str, size: str) -> SpecError:
    return _fail(
        name,
        f"spec is {size}; ktg reads specs up to {MAX_SPEC_BYTES / 1e6:.0f} MB",
        hint="a graph spec is a few kB; is this the right file?",
    )


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = os.read(fd, min(1 << 16, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _decode(name: str, raw: bytes) -> str:
    wide = _utf16_or_32(raw)
    if wide is not None:
        raise _fail(
            name,
            f"the file is {wide}; ktg reads UTF-8",
            hint=f"save the spec as UTF-8, e.g. iconv -f {wide.split()[0]} -t UTF-8",
        )
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


_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 text (little-endian, with a byte-order mark)"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 text (big-endian, with a byte-order mark)"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 text (little-endian, with a byte-order mark)"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 text (big-endian, with a byte-order mark)"),
)
# Without a mark, text that is mostly ASCII shows where its zero bytes fall: every other byte
# in UTF-16, three bytes of four in UTF-32 (RFC 4627 tells JSON's encodings the same way).
_NUL_PATTERNS = (
    ((False, True, True, True), "utf-32-le", "UTF-32 text (little-endian, no byte-order mark)"),
    ((True, True, True, False), "utf-32-be", "UTF-32 text (big-endian, no byte-order mark)"),
    ((False, True, False, True), "utf-16-le", "UTF-16 text (little-endian, no byte-order mark)"),
    ((True, False, True, False), "utf-16-be", "UTF-16 text (big-endian, no byte-order mark)"),
)


def _utf16_or_32(raw: bytes) -> str | None:
    """'UTF-16 text (little-endian, ...)' when ``raw`` is UTF-16 or UTF-32, else None."""
    for bom, codec, label in _BOMS:
        if raw.startswith(bom) and _decodes(raw[len(bom) :], codec):
            return label
    sample = raw[:4096]
    sample = sample[: len(sample) - len(sample) % 4]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    zero = [sample[i::4].count(0) / (len(sample) // 4) for i in range(4)]
    for pattern, codec, label in _NUL_PATTERNS:
        fits = all((z > 0.7) if nul else (z < 0.3) for z, nul in zip(zero, pattern, strict=True))
        if fits and _decodes(raw, codec):
            return label
    return None


def _decodes(raw: bytes, codec: str) -> bool:
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return False
    return "\x00" not in text


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

_YAML_BREAKS = "\r\n\x85\u2028\u2029"  # what YAML counts as a line break; JSON counts "\n"
SNIPPET_WIDTH = 80  # characters of a long line shown around the error


def _snippet(text: str, offset: int, breaks: str = "\n") -> str:
    """The line holding ``offset`` and a caret under it; of a long line only the part around
    ``offset`` (a syntax error at column 180,000 shows 80 characters, not the whole line)."""
    offset = min(max(offset, 0), len(text))
    start = max(text.rfind(b, 0, offset) for b in breaks) + 1
    ends = [i for i in (text.find(b, offset) for b in breaks) if i >= 0]
    line = text[start : min(ends, default=len(text))].rstrip()
    if not line.strip():
        return ""
    col = offset - start
    lo, hi = 0, len(line)
    if len(line) > SNIPPET_WIDTH + 20:
        lo = max(0, min(col - SNIPPET_WIDTH // 2, len(line) - SNIPPET_WIDTH))
        hi = lo + SNIPPET_WIDTH
    shown = ("..." if lo else "") + _visible(line[lo:hi]) + ("..." if hi < len(line) else "")
    caret = col - lo + (3 if lo else 0)
    return f"\n    {shown}\n    {' ' * caret}^"


def _visible(text: str) -> str:
    """One column per character: a tab as a space, an invisible or control character as
    U+FFFD (the hint names it), so that the caret stays under the right character."""
    return "".join(
        " " if c == "\t" else "\ufffd" if not c.isprintable() and c != " " else c for c in text
    )


def _odd_hint(text: str, at: int, lines: tuple[int, int] | None = None) -> str | None:
    """A hint naming an invisible or look-alike character (a no-break space, a byte-order
    mark, a typographic quote) at offset ``at`` where a parser stopped, else the first on
    ``lines`` (first, last; 1-based, YAML's line breaks); None when there is none."""
    if at < len(text) and text[at] != "\t" and odd_characters(text[at], letters=False):
        line, col = _line_col(text, at)
        return _odd_line_hint(line, col, odd_characters(text[at], letters=False)[0][1])
    if lines is None:
        return None
    split = re.split("\r\n|[" + re.escape(_YAML_BREAKS) + "]", text)
    for number in range(max(lines[0], 1), min(lines[1], len(split)) + 1):
        odd = odd_characters(split[number - 1].replace("\t", " "), letters=False)  # tabs: hinted
        if odd:
            return _odd_line_hint(number, *odd[0])
    return None


def _odd_line_hint(line: int, col: int, what: str) -> str:
    hint = f"line {line}, column {col} has {what}"
    if "BYTE ORDER MARK" in what:
        return hint + ": were two files joined? delete it"
    return hint + (": retype it" if "looks like" in what else ": delete it")


_ODD_BREAK = re.compile("[\x85\u2028\u2029]")


def _load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    odd_break = _ODD_BREAK.search(text)
    if odd_break:  # YAML counts them as line breaks, editors mostly do not: lines would differ
        at = _line_col(text, odd_break.start())
        raise _fail(
            file,
            f"{char_name(odd_break.group())} is a line break to YAML",
            line=at[0],
            col=at[1],
            hint="most editors show no break there; use a plain newline, or delete it",
        )
    loader = _YamlLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            col = mark.column + 1 if mark else None
            problem = exc.problem or exc.context or "malformed YAML"
            if "maximum nesting depth" in problem:  # libyaml stops at 1000 levels
                raise _fail(file, _TOO_DEEP, line=line, col=col) from None
            hints = []
            if mark is not None and text[mark.index : mark.index + 1] == "\t":
                hints.append("YAML indents with spaces, not tabs")
            msg = f"YAML syntax error: {problem}"
            ctx = exc.context_mark
            if exc.context and ctx is not None and mark is not None and ctx.line != mark.line:
                msg += f" ({exc.context} that starts at line {ctx.line + 1})"
            if mark is not None:
                msg += _snippet(text, mark.index, _YAML_BREAKS)
                first = ctx.line + 1 if ctx is not None else mark.line
                odd = _odd_hint(text, mark.index, (first, mark.line + 1))
                if odd:
                    hints.append(odd)
            hint = "; ".join(hints) or None
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
        except RecursionError:  # the pure-Python composer, without libyaml's depth limit
            raise _fail(file, _TOO_DEEP) from None
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


_TOO_DEEP = f"the spec is nested more than {MAX_DEPTH} levels deep"
MAX_KEY_CHARS = 200  # a key is a name; a longer one is a missing ':' or newline

_T = "tag:yaml.org,2002:"
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
_DIGITS = re.compile(r"[-+]?[0-9_]+")
# Scalars read by YAML 1.1 implicitly; tags beyond them must be written out (!!binary, ...).
_SCALAR_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null")}
# as keys, 2001-12-14: and =: are names as written (a merge key << is YAML's own)
_IMPLICIT_KEY_TAGS = {_T + t for t in ("timestamp", "value", "merge")}


def _key_problem(key: str) -> tuple[str, str] | None:
    """(message, hint) when a key cannot be a name: too long, or with an invisible or
    look-alike character (a Cyrillic 'о' in 'nоdes', a zero-width space)."""
    if len(key) > MAX_KEY_CHARS:
        return (
            f"a key of {len(key):,} characters ('{shorten(key, 40)}')",
            f"keys are names of up to {MAX_KEY_CHARS} characters; is a ':' or a newline missing?",
        )
    odd = describe_odd(key)
    if odd:
        plain = plain_spelling(key)
        return (
            f"the key '{key}' is not plain text: its {odd}",
            f"retype it as '{plain}'" if plain else "retype the key",
        )
    return None


def _key_in_path(key: str) -> str:
    return key if len(key) <= MAX_KEY_CHARS else shorten(key, 40)


class _YamlBuilder:
    """Node tree -> data, recording positions; duplicate keys, unsafe tags and YAML 1.1's
    surprising readings of plain text (1:30, 010, .inf, 2001-12-14) become issues."""

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
        problem = self._scalar_problem(node)
        if problem is not None:
            self._issue(path, node, *problem)
            return None
        if node.tag == _T + "binary":
            self._refuse_tag(path, node)
            return None
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            self._refuse_tag(path, node)
        except ValueError as exc:
            if _DIGITS.fullmatch(str(node.value)):  # an integer of more than 4300 digits
                self._issue(path, node, f"cannot read this value: {_first_clause(exc)}")
            else:  # an explicit tag that does not fit: !!int x
                self._cannot_read(path, node)
        except Exception:  # !!bool maybe, !!timestamp x
            self._cannot_read(path, node)
        return None

    def _cannot_read(self, path: Path, node: yaml.Node) -> None:
        short = node.tag.replace(_T, "!!")
        self._issue(
            path,
            node,
            f"cannot read {shorten(str(node.value))!r} as {short}",
            hint="remove the tag",
        )

    def _scalar_problem(self, node: yaml.Node) -> tuple[str, str] | None:
        """(message, hint) for a scalar that YAML 1.1 reads as something other than what it
        looks like: base-60 numbers, octal, infinity and NaN, dates, binary, '=' and '<<'."""
        tag, text = node.tag, str(node.value)
        quote = f"quote it if it is text: '{text}'"
        if tag in (_T + "int", _T + "float") and ":" in text:
            value = self.loader.construct_object(node)
            return (
                f"'{text}' is read by YAML 1.1 as the base-60 number {value}",
                f"write the number plainly, or {quote}",
            )
        if tag == _T + "int" and _OCTAL.fullmatch(text):
            digits = text.replace("_", "")
            value = int(digits, 8)
            if value != int(digits, 10):
                plain = str(int(digits, 10))
                return (
                    f"'{text}' is read by YAML 1.1 as the octal number {value}",
                    f"write {plain} without the leading zero, or {quote}",
                )
        if tag == _T + "float" and text.lstrip("+-").lower() in (".inf", ".nan"):
            what = "not-a-number (NaN)" if "nan" in text.lower() else "infinity"
            return (
                f"'{text}' is read by YAML as {what}; numbers must be finite",
                f"write a finite number, or {quote}",
            )
        if tag == _T + "timestamp":
            return (f"'{text}' is read by YAML 1.1 as a date", quote)
        if tag in (_T + "value", _T + "merge"):
            return (f"'{text}' is a YAML 1.1 special key, not a value", f"quote it: '{text}'")
        return None

    def _refuse_tag(self, path: Path, node: yaml.Node) -> None:
        hint = "specs hold plain data; register code with --plugin instead"
        if node.tag == _T + "binary":
            hint = "specs hold plain text: write the value itself, not base64"
        self._issue(path, node, f"YAML tag {node.tag!r} is not allowed in a spec", hint=hint)

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
            self._issue(path[:3], node, _TOO_DEEP)
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
            if key_node.tag not in _SCALAR_TAGS and key_node.tag not in _IMPLICIT_KEY_TAGS:
                shown = _key_in_path(str(key_node.value))
                self._refuse_tag((*path, shown) if shown else path, key_node)
                continue
            try:
                key = self.loader.construct_object(key_node)
            except Exception:  # !!bool x, a 5000-digit number: the key as written
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
            problem = _key_problem(key)
            if problem is not None:  # reported, and what it holds is still checked
                self._issue((*path, _key_in_path(key)), key_node, *problem)
                self.build(value_node, (*path, _key_in_path(key)))
                continue
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
        msg = f"JSON syntax error: {exc.msg}" + _snippet(text, exc.pos)
        hint = _odd_hint(text, exc.pos)  # the JSON parser stops right at it
        raise _fail(file, msg, line=exc.lineno, col=exc.colno, hint=hint) from None
    except RecursionError:  # json's C scanner stops near 1000 levels: find where it got deep
        issues: list[SpecIssue] = []
        try:
            _JsonPositions(text, SourceMap(file), issues).scan()
        except Exception:  # the text may also be broken further on; the depth is the news
            issues = [i for i in issues if i.message == _TOO_DEEP]
        deep = [i for i in issues if i.message == _TOO_DEEP]
        raise SpecError(deep) if deep else _fail(file, _TOO_DEEP) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise _fail(file, f"cannot read the JSON: {_first_clause(exc)}") from None
    source = SourceMap(file)
    issues = []
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


_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class _Open:
    """A JSON object or array being walked: its path, and where the next value goes."""

    path: Path
    is_object: bool
    index: int = 0  # arrays: the next item's index
    key: str = ""  # objects: the key of the next value
    want_key: bool = True  # objects: a key (or the end) comes next
    seen: set[str] = field(default_factory=set)


class _JsonPositions:
    """Walks JSON text already known to be valid (or, after a RecursionError, known to be too
    deep), noting where each key and value starts, and refusing duplicate keys, keys that are
    not names, half surrogate pairs and nesting deeper than MAX_DEPTH. Iterative: no depth
    can exhaust the stack."""

    def __init__(self, text: str, source: SourceMap, issues: list[SpecIssue]) -> None:
        self.text = text
        self.source = source
        self.issues = issues
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
        line = bisect.bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1

    def _issue(self, path: Path, offset: int, message: str, hint: str | None = None) -> None:
        line, col = self._where(offset)
        self.issues.append(
            SpecIssue(path, message, hint=hint, file=self.source.file, line=line, col=col)
        )

    def scan(self) -> None:
        stack: list[_Open] = []
        for tok, offset in self._tokens():
            top = stack[-1] if stack else None
            if top is not None and top.is_object and top.want_key:
                if tok == "}":
                    stack.pop()
                    self._value_done(stack)
                elif tok != ",":
                    self._key(top, json.loads(tok), offset)
                continue
            if tok in (":", ","):
                continue
            if tok == "]":
                stack.pop()
                self._value_done(stack)
                continue
            if top is None:
                path: Path = ()
            elif top.is_object:
                path = (*top.path, top.key)
            else:
                path = (*top.path, top.index)
                top.index += 1
            self.source.positions.setdefault(path, self._where(offset))
            if tok in ("{", "["):
                if len(path) > MAX_DEPTH:
                    self._issue(path[:3], offset, _TOO_DEEP)
                    return
                stack.append(_Open(path, is_object=tok == "{"))
                continue
            if tok.startswith('"'):
                self._string(path, json.loads(tok), offset)
            self._value_done(stack)

    @staticmethod
    def _value_done(stack: list[_Open]) -> None:
        if stack and stack[-1].is_object:
            stack[-1].want_key = True

    def _key(self, top: _Open, key: str, offset: int) -> None:
        top.want_key = False
        kpath = (*top.path, _key_in_path(key))
        top.key = _key_in_path(key)
        problem = _key_problem(key)  # a half surrogate pair is an invisible character here
        if problem is not None:
            self._issue(kpath, offset, *problem)
        elif key in top.seen:
            first = self.source.positions.get(kpath)
            where = f" (first written at line {first[0]})" if first else ""
            self._issue(kpath, offset, f"duplicate key '{key}'{where}", "each key may appear once")
        else:
            self.source.positions[kpath] = self._where(offset)
        top.seen.add(key)

    def _string(self, path: Path, value: str, offset: int) -> None:
        m = _SURROGATE.search(value)
        if m:
            self._issue(
                path,
                offset,
                f"'\\u{ord(m.group()):04x}' is half of a UTF-16 surrogate pair, not a character",
                "write the character itself, or both halves of the pair",
            )
