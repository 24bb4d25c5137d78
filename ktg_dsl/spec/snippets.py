"""Showing where a reader stopped: the line and a caret under the column (only the part of a
long line around it), and hints that name an invisible or look-alike character there."""

from __future__ import annotations

import re

from .messages import odd_characters

YAML_BREAKS = "\r\n\x85\u2028\u2029"  # what YAML counts as a line break; JSON counts "\n"
SNIPPET_WIDTH = 80  # characters of a long line shown around the error


def snippet(text: str, offset: int, breaks: str = "\n") -> str:
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
    shown = ("..." if lo else "") + visible(line[lo:hi]) + ("..." if hi < len(line) else "")
    caret = col - lo + (3 if lo else 0)
    return f"\n    {shown}\n    {' ' * caret}^"


def visible(text: str) -> str:
    """One column per character: a tab as a space, an invisible or control character as
    U+FFFD (the hint names it), so that the caret stays under the right character."""
    return "".join(
        " " if c == "\t" else "\ufffd" if not c.isprintable() and c != " " else c for c in text
    )


def odd_hint(text: str, at: int, lines: tuple[int, int] | None = None) -> str | None:
    """A hint naming an invisible or look-alike character (a no-break space, a byte-order
    mark, a typographic quote) at offset ``at`` where a parser stopped, else the first on
    ``lines`` (first, last; 1-based, YAML's line breaks); None when there is none."""
    if at < len(text) and text[at] != "\t" and odd_characters(text[at], letters=False):
        line, col = line_col(text, at)
        return odd_line_hint(line, col, odd_characters(text[at], letters=False)[0][1])
    if lines is None:
        return None
    split = re.split("\r\n|[" + re.escape(YAML_BREAKS) + "]", text)
    for number in range(max(lines[0], 1), min(lines[1], len(split)) + 1):
        odd = odd_characters(split[number - 1].replace("\t", " "), letters=False)  # tabs: hinted
        if odd:
            return odd_line_hint(number, *odd[0])
    return None


def odd_line_hint(line: int, col: int, what: str) -> str:
    hint = f"line {line}, column {col} has {what}"
    if "BYTE ORDER MARK" in what:
        return hint + ": were two files joined? delete it"
    return hint + (": retype it" if "looks like" in what else ": delete it")


def line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def first_clause(exc: Exception) -> str:
    """Python's message without its advice to the programmer ("; use sys....")."""
    return str(exc).split(";")[0]
