"""YAML through PyYAML's *safe* composer only: no tag can construct a Python object, and the
node tree is turned into data here, so duplicate keys, alias bombs, YAML 1.1 readings of values
(``1:30``, ``010``, ``yes`` as numbers) and odd keys are caught with their position."""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import Path, SpecError, SpecIssue
from .messages import char_name, shorten
from .snippets import YAML_BREAKS, first_clause, line_col, odd_hint, snippet
from .source import MAX_DEPTH, MAX_VALUES, TOO_DEEP, SourceMap, fail, key_in_path, key_problem

try:  # libyaml when available: same safe semantics, much faster
    _YamlLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _YamlLoader = yaml.SafeLoader


_ODD_BREAK = re.compile("[\x85\u2028\u2029]")


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    odd_break = _ODD_BREAK.search(text)
    if odd_break:  # YAML counts them as line breaks, editors mostly do not: lines would differ
        at = line_col(text, odd_break.start())
        raise fail(
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
                raise fail(file, TOO_DEEP, line=line, col=col) from None
            hints = []
            if mark is not None and text[mark.index : mark.index + 1] == "\t":
                hints.append("YAML indents with spaces, not tabs")
            msg = f"YAML syntax error: {problem}"
            ctx = exc.context_mark
            if exc.context and ctx is not None and mark is not None and ctx.line != mark.line:
                msg += f" ({exc.context} that starts at line {ctx.line + 1})"
            if mark is not None:
                msg += snippet(text, mark.index, YAML_BREAKS)
                first = ctx.line + 1 if ctx is not None else mark.line
                odd = odd_hint(text, mark.index, (first, mark.line + 1))
                if odd:
                    hints.append(odd)
            hint = "; ".join(hints) or None
            raise fail(file, msg, line=line, col=col, hint=hint) from None
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow
            line, col = line_col(text, exc.position)
            raise fail(
                file,
                f"character {exc.character!r} is not allowed in YAML",
                line=line,
                col=col,
                hint="remove control characters",
            ) from None
        except yaml.YAMLError as exc:
            raise fail(file, f"YAML error: {exc}") from None
        except RecursionError:  # the pure-Python composer, without libyaml's depth limit
            raise fail(file, TOO_DEEP) from None
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


_T = "tag:yaml.org,2002:"
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
_DIGITS = re.compile(r"[-+]?[0-9_]+")
# Scalars read by YAML 1.1 implicitly; tags beyond them must be written out (!!binary, ...).
_SCALAR_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null")}
# as keys, 2001-12-14: and =: are names as written (a merge key << is YAML's own)
_IMPLICIT_KEY_TAGS = {_T + t for t in ("timestamp", "value", "merge")}


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
                self._issue(path, node, f"cannot read this value: {first_clause(exc)}")
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
            self._issue(path[:3], node, TOO_DEEP)
            raise SpecError(self.issues)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _key(self, key_node: yaml.Node, path: Path) -> str | None:
        """A mapping key as a name, or None (reported) when it cannot be one."""
        if not isinstance(key_node, yaml.ScalarNode):
            self._issue(path, key_node, "a key must be a plain name, not a list or mapping")
            return None
        if key_node.tag not in _SCALAR_TAGS and key_node.tag not in _IMPLICIT_KEY_TAGS:
            shown = key_in_path(str(key_node.value))
            self._refuse_tag((*path, shown) if shown else path, key_node)
            return None
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
            return None
        return key if isinstance(key, str) else str(key_node.value)  # 1: is a name here

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
            key = self._key(key_node, path)
            if key is None:
                continue
            problem = key_problem(key)
            if problem is not None:  # reported, and what it holds is still checked
                self._issue((*path, key_in_path(key)), key_node, *problem)
                self.build(value_node, (*path, key_in_path(key)))
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
