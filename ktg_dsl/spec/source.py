"""Where a spec's values came from (file, line, column), the limits every reader enforces,
and the checks of keys that every reader shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import Path, SpecError, SpecIssue
from .messages import describe_odd, plain_spelling, shorten

MAX_SPEC_BYTES = 1_000_000
MAX_VALUES = 100_000  # a spec with more values is an alias bomb or not a graph spec
MAX_DEPTH = 64  # specs nest a few levels; deeper is not a spec (and would exhaust the stack)


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


def fail(
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


TOO_DEEP = f"the spec is nested more than {MAX_DEPTH} levels deep"
MAX_KEY_CHARS = 200  # a key is a name; a longer one is a missing ':' or newline

_T = "tag:yaml.org,2002:"
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
_DIGITS = re.compile(r"[-+]?[0-9_]+")
# Scalars read by YAML 1.1 implicitly; tags beyond them must be written out (!!binary, ...).
_SCALAR_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null")}
# as keys, 2001-12-14: and =: are names as written (a merge key << is YAML's own)
_IMPLICIT_KEY_TAGS = {_T + t for t in ("timestamp", "value", "merge")}


def key_problem(key: str) -> tuple[str, str] | None:
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


def key_in_path(key: str) -> str:
    return key if len(key) <= MAX_KEY_CHARS else shorten(key, 40)
