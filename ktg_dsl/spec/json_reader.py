"""JSON through the standard ``json`` module (for its exact syntax errors), then an iterative
position scanner that records where each key stands and refuses what the YAML reader refuses
(odd keys, nesting deeper than MAX_DEPTH)."""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import Path, SpecError, SpecIssue
from .snippets import first_clause, line_col, odd_hint, snippet
from .source import MAX_DEPTH, TOO_DEEP, SourceMap, fail, key_in_path, key_problem

_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(-?\d[\d.eE+-]*)|(true|false|null)|([{}\[\]:,]))')


def load_json(text: str, file: str) -> tuple[Any, SourceMap]:
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except _NotJson as exc:
        m = re.search(rf"(?<![\w\"]){re.escape(exc.token)}(?![\w\"])", text)
        line, col = line_col(text, m.start()) if m else (None, None)
        raise fail(
            file,
            f"{exc.token} is not a JSON number",
            line=line,
            col=col,
            hint="JSON has no NaN or infinity; write a finite number",
        ) from None
    except json.JSONDecodeError as exc:
        msg = f"JSON syntax error: {exc.msg}" + snippet(text, exc.pos)
        hint = odd_hint(text, exc.pos)  # the JSON parser stops right at it
        raise fail(file, msg, line=exc.lineno, col=exc.colno, hint=hint) from None
    except RecursionError:  # json's C scanner stops near 1000 levels: find where it got deep
        issues: list[SpecIssue] = []
        try:
            _JsonPositions(text, SourceMap(file), issues).scan()
        except Exception:  # the text may also be broken further on; the depth is the news
            issues = [i for i in issues if i.message == TOO_DEEP]
        deep = [i for i in issues if i.message == TOO_DEEP]
        raise SpecError(deep) if deep else fail(file, TOO_DEEP) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise fail(file, f"cannot read the JSON: {first_clause(exc)}") from None
    source = SourceMap(file)
    issues = []
    _JsonPositions(text, source, issues).scan()
    if issues:
        raise SpecError(issues)
    return data, source


class _NotJson(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _no_constant(token: str) -> Any:
    raise _NotJson(token)


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
                    self._issue(path[:3], offset, TOO_DEEP)
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
        kpath = (*top.path, key_in_path(key))
        top.key = key_in_path(key)
        problem = key_problem(key)  # a half surrogate pair is an invisible character here
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
