"""Problems found in a spec, reported in the user's terms.

Every stage (loader, schema, components, graph) collects :class:`SpecIssue` objects instead of
stopping at the first one, so a user fixes everything in one round trip. A stage that cannot go
on raises :class:`SpecError` carrying all issues found so far.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

Severity = Literal["error", "warning"]
PathPart = str | int
Path = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """``("nodes", "r32a", "model")`` -> ``nodes.r32a.model``; ints become ``[i]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<spec>"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest known choice, or None if nothing is close."""
    names = sorted(set(choices))
    word = str(word)
    # a swap of two letters ("resnet23") is the likeliest slip; difflib does not rank it first
    swapped = [
        n
        for n in names
        if len(n) == len(word)
        and sorted(n) == sorted(word)
        and sum(a != b for a, b in zip(n, word, strict=True)) == 2
    ]
    matches = swapped or difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def choices_hint(word: str, choices: Iterable[str], limit: int = 12) -> str:
    """'did you mean X?' when one is close, else the list of what is allowed."""
    names = sorted(set(choices))
    close = did_you_mean(word, names)
    if close:
        return close
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return f"expected one of: {shown}" if names else "nothing is registered"


def _escape_invisible(text: str) -> str:
    """Spell out characters a terminal would hide or obey (a zero-width space in a key, an
    escape sequence, a right-to-left override written in JSON as \\u202e): 'no\\u200bdes'."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else _escaped(c) for c in text)


def _escaped(c: str) -> str:
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@dataclass(frozen=True)
class SpecIssue:
    """One problem: where it is (file, line, column, key path) and what to do about it."""

    path: Path
    message: str
    hint: str | None = None
    severity: Severity = "error"
    file: str | None = None
    line: int | None = None
    col: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def located(self, file: str | None, line: int | None, col: int | None) -> SpecIssue:
        return replace(self, file=file, line=line, col=col)

    def format(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        label = "warning: " if self.severity == "warning" else ""
        key = f"{format_path(self.path)}: " if self.path else ""
        text = f"{where}  {key}{label}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return _escape_invisible(text)

    def __str__(self) -> str:
        return self.format()


MAX_SHOWN = 50  # issues reported one by one; the rest are counted


def report_lines(issues: Sequence[SpecIssue], limit: int = MAX_SHOWN) -> list[str]:
    """The lines that report ``issues``: the first ``limit`` of them, then one line that counts
    the rest (20,000 duplicate edges make 50 lines, not 20,000)."""
    lines = [i.format() for i in issues[:limit]]
    rest = issues[limit:]
    if rest:
        errors = sum(i.is_error for i in rest)
        warnings = len(rest) - errors
        lines.append(
            f"... and {len(rest):,} more issue{'s' if len(rest) != 1 else ''} "
            f"({errors:,} error{'s' if errors != 1 else ''}, "
            f"{warnings:,} warning{'s' if warnings != 1 else ''})"
        )
    return lines


class SpecError(Exception):
    """A spec that cannot be used. ``issues`` holds every problem found, warnings included."""

    def __init__(self, issues: Sequence[SpecIssue], *, unreadable: bool = False) -> None:
        self.issues = list(issues)
        # True when the file itself could not be read (missing, a directory, no permission):
        # the CLI exits 2 for those and 1 for a file whose content is wrong.
        self.unreadable = unreadable
        errors = [i for i in self.issues if i.is_error]
        head = f"{len(errors)} error(s) in spec"
        super().__init__(head + "\n" + "\n".join(report_lines(self.issues)))

    @property
    def errors(self) -> list[SpecIssue]:
        return [i for i in self.issues if i.is_error]


class KtgRuntimeError(RuntimeError):
    """A failure while compiling or training that is the user's to fix (a clear message, no
    traceback at the command line): a missing dataset, a bad checkpoint, a NaN loss."""


class ArgumentError(ValueError):
    """A library call got an argument that cannot work (an output format it cannot tell, an
    epoch outside the run). The command line reports it as a wrong command line (exit 2)."""
