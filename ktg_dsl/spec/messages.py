"""pydantic's validation errors, rewritten as :class:`SpecIssue` in the user's words."""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import Path, SpecIssue, did_you_mean
from .locations import field_names, model_at, plain_location

_SCALARS = (str, int, float, bool, type(None))


# --------------------------------------------------------------------------- odd characters

# Letters of other scripts that look like ASCII ones: they slip in from another keyboard layout
# or a copied document. Full-width and mathematical letters, odd spaces and ligatures are found
# by NFKC instead, which folds them to ASCII.
_LOOKALIKE_LETTERS = dict(
    zip(
        "аеорсухіјѕԁһԛԝАВЕКМНОРСТХІЈЅοικνρυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧı",
        "aeopcyxijsdhqwABEKMHOPCTXIJSoikvpuxABEZHIKMNOPTYXi",
        strict=True,
    )
)
_LOOKALIKE_MARKS = {
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63", "-"),
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"'),
}


_CONTROL_NAMES = {  # unicodedata has no names for control characters
    "\t": "TAB",
    "\n": "LINE FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
    "\x85": "NEXT LINE",
    "\ufeff": "BYTE ORDER MARK",
}


def char_name(ch: str) -> str:
    """'U+043E CYRILLIC SMALL LETTER O'."""
    name = _CONTROL_NAMES.get(ch) or unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def _invisible(ch: str) -> bool:
    """A control, format (zero-width, bidi), line-separator or unassigned character."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def _lookalike(ch: str, mixed: bool) -> str | None:
    """The ASCII text ``ch`` passes for, if it is not ASCII itself. ``mixed``: look-alike
    letters count (see :func:`_mixed`: a Cyrillic 'о' in a Latin word, not in a Cyrillic one)."""
    if ch.isascii():
        return None
    if ch in _LOOKALIKE_MARKS:
        return _LOOKALIKE_MARKS[ch]
    folded = unicodedata.normalize("NFKC", ch)
    if folded != ch and folded.isascii() and folded.isprintable():
        return folded
    if mixed and ch in _LOOKALIKE_LETTERS:
        return _LOOKALIKE_LETTERS[ch]
    return None


def _mixed(text: str) -> bool:
    """Whether look-alike letters in ``text`` pass for Latin ones: the text also holds ASCII
    letters ('nоdes'), or all its letters look Latin ('а' alone); not so in a Cyrillic word."""
    letters = [c for c in text if c.isalpha()]
    return any(c.isascii() for c in letters) or all(
        c.isascii() or c in _LOOKALIKE_LETTERS for c in letters
    )


def odd_characters(text: str, letters: bool = True) -> list[tuple[int, str]]:
    """Each character of ``text`` that is invisible or passes for an ASCII character it is not,
    as (1-based position, description), e.g. (2, "U+043E CYRILLIC SMALL LETTER O, which looks
    like 'o'"). ``letters=False`` leaves out look-alike letters (for a whole line of a file)."""
    mixed = _mixed(text)
    out: list[tuple[int, str]] = []
    for i, ch in enumerate(text, 1):
        if _invisible(ch):
            out.append((i, f"the invisible {char_name(ch)}"))
            continue
        if not letters and unicodedata.category(ch).startswith("L"):
            continue
        like = _lookalike(ch, mixed)
        if like is not None:
            like = "a space" if like == " " else repr(like)
            out.append((i, f"{char_name(ch)}, which looks like {like}"))
    return out


def plain_spelling(text: str) -> str:
    """``text`` with invisible characters removed and look-alikes replaced by their ASCII."""
    mixed = _mixed(text)
    return "".join("" if _invisible(c) else (_lookalike(c, mixed) or c) for c in text)


def describe_odd(text: str) -> str | None:
    """'character 2 is U+043E CYRILLIC SMALL LETTER O, which looks like 'o'' (and how many
    more there are), or None when ``text`` is plain."""
    odd = odd_characters(text)
    if not odd:
        return None
    pos, what = odd[0]
    more = f" (and {len(odd) - 1} more)" if len(odd) > 1 else ""
    return f"character {pos} is {what}{more}"


def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) < 60 else repr(value[:57] + "...")
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}
_TYPES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "tuple_type": "a list",
}


_PATTERN_HINTS = {  # what each of the schema's patterns (spec/types.py, spec/schema.py) takes
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}$": "a tap name: up to 64 ASCII letters, digits and '_', "
    "starting with a letter or '_'",
    r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$": "a module path: names of letters, digits and '_' "
    "joined by '.', e.g. layer3 or layer3.4.conv2",
}


def issue_from_error(err: Any, root: type[BaseModel], prefix: Path = ()) -> SpecIssue:
    loc: Path = tuple(err["loc"])
    if loc[-1:] == ("[key]",):  # pydantic's mark of a mapping's key: the key is the path
        loc = loc[:-1]
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    path = (*prefix, *plain_location(root, loc)[0])
    hint = None
    if kind == "extra_forbidden":
        message, hint = _unknown_key(loc, root)
    elif kind in ("odd_character", "value_with_hint"):  # the schema's own (spec/types.py)
        message, hint = err["msg"], ctx.get("hint")
    elif kind == "missing":
        message = f"missing required key '{loc[-1]}'" if loc else "missing value"
    elif kind == "literal_error":
        message, hint = _not_a_choice(value, ctx)
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        message = f"must be {_BOUNDS[kind]} {bound}, got {_show(value)}"
    elif kind in _TYPES:
        message, hint = (
            f"expected {_TYPES[kind]}, got {_show(value)}",
            _type_hint(path, value, kind),
        )
    elif kind == "string_pattern_mismatch":
        message = f"{_show(value)} is not allowed here"
        hint = _PATTERN_HINTS.get(
            str(ctx.get("pattern")),
            "use letters, digits, '_', '-' and '.', starting with a letter or digit",
        )
        if path[-1:] == ("device",):
            hint = "auto, cpu, cuda or cuda:N"
        hint = _value_hint(value) or hint
    elif kind == "finite_number":
        message = f"must be a finite number, got {_show(value)}"
    elif kind in ("too_short", "too_long"):
        message = err["msg"][0].lower() + err["msg"][1:]
    else:
        message = _other(err, kind, value)
    if err.get("union_words"):
        also = f"{err['union_words']} is also allowed here"
        hint = f"{hint}; {also}" if hint else also
    return SpecIssue(path, message, hint=hint)


def _unknown_key(loc: Path, root: type[BaseModel]) -> tuple[str, str | None]:
    key = str(loc[-1]) if loc else "?"
    parent = model_at(root, loc[:-1])
    allowed = field_names(parent) if parent else []
    message = f"unknown key '{shorten(key)}'"
    odd = describe_odd(key)
    if odd:  # 'nоdes' with a Cyrillic о: say so, "did you mean 'nodes'" reads as nonsense
        plain = plain_spelling(key)
        close = did_you_mean(plain, allowed)
        return message + f": its {odd}", (
            f"retype it as '{plain}'" if plain in allowed else close or "retype it"
        )
    return message, did_you_mean(key, allowed) or (
        f"allowed here: {', '.join(allowed)}" if allowed else None
    )


def _not_a_choice(value: Any, ctx: dict[str, Any]) -> tuple[str, str | None]:
    expected = ctx.get("expected", "")
    options = [o.strip().strip("'") for o in str(expected).replace(" or ", ",").split(",")]
    numeric = "'" not in str(expected)  # version: Literal[1]
    hint = _value_hint(value, "a number" if numeric else None) or did_you_mean(
        str(value), [o for o in options if o]
    )
    return f"expected {expected}, got {_show(value)}", hint


def _type_hint(path: Path, value: Any, kind: str) -> str | None:
    if len(path) == 2 and path[0] == "nodes" and isinstance(value, str):
        return f"write '{path[1]}: {{model: {value}}}'"
    if path == ("edges",) and isinstance(value, dict):
        return "a list of edges: '- {to: a, from: labels}'"
    return _value_hint(value, _TYPES[kind])


def _other(err: Any, kind: str, value: Any) -> str:
    msg = err["msg"]
    message = str(msg[0].lower() + msg[1:] if msg else kind)
    # custom errors (a component reference, a value check) already say what they got
    if (
        isinstance(value, _SCALARS)
        and kind not in ("value_error", "assertion_error")
        and not kind.startswith("component")
        and ", got " not in message
    ):
        message += f", got {_show(value)}"
    return message.replace("Value error, ", "").replace("value error, ", "")


def _value_hint(value: Any, expected: str | None = None) -> str | None:
    """What YAML made of a value the user wrote otherwise (a boolean, nothing), or the odd
    character in a string that passes for plain text."""
    if isinstance(value, bool) and expected != "true or false":
        if expected in ("an integer", "a number"):
            return "true/false, yes/no and on/off are booleans, not numbers: write a number"
        return "true/false, yes/no and on/off are booleans, not text: quote it"
    if value is None:
        return "the value is empty: YAML reads an empty value, ~ and null as nothing"
    if isinstance(value, str):
        odd = describe_odd(value)
        if odd:
            return f"its {odd}: retype it as {_show(plain_spelling(value))}"
    return None


def _meant(loc: Path, root: type[BaseModel]) -> str | None:
    """The key an unknown key at ``loc`` most likely meant (its did-you-mean), if any."""
    key = str(loc[-1]) if loc else ""
    parent = model_at(root, loc[:-1])
    allowed = field_names(parent) if parent else []
    plain = plain_spelling(key)
    if plain != key and plain in allowed:
        return plain
    close = did_you_mean(plain, allowed)
    return close.split("'")[1] if close else None


def issues_from_validation(
    exc: ValidationError, root: type[BaseModel], prefix: Path = ()
) -> list[SpecIssue]:
    """One issue per problem: a misspelt key is reported once, as the unknown key with its
    suggestion, not also as the required key it meant being missing."""
    errors = exc.errors(include_url=False)
    meant = {
        (*loc[:-1], name)
        for err in errors
        if err["type"] == "extra_forbidden" and (loc := tuple(err["loc"]))
        if (name := _meant(loc, root))
    }
    seen: set[tuple[Path, str]] = set()
    out: list[SpecIssue] = []
    for err in _one_per_union(errors, root):
        if err["type"] == "missing" and tuple(err["loc"]) in meant:
            continue
        issue = issue_from_error(err, root, prefix)
        key = (issue.path, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


def _one_per_union(errors: list[Any], root: type[BaseModel]) -> list[Any]:
    """A value that fits no member of a union (``hidden: auto | integer >= 1`` given 0) fails
    once per member; say it once: the member's own error, the words it may also be (``'auto'``)
    as its hint, instead of one line per member in pydantic's labels."""
    words: dict[Path, list[str]] = {}
    others: dict[Path, int] = {}
    for err in errors:
        path, labelled = plain_location(root, tuple(err["loc"]))
        if not labelled:
            continue
        if err["type"] == "literal_error":
            words.setdefault(path, []).append(str((err.get("ctx") or {}).get("expected", "")))
        else:
            others[path] = others.get(path, 0) + 1
    out: list[Any] = []
    for err in errors:
        path, labelled = plain_location(root, tuple(err["loc"]))
        if labelled and path in words and others.get(path):
            if err["type"] == "literal_error":
                continue
            also = " or ".join(w for w in words[path] if w)
            err = {**err, "union_words": also}
        out.append(err)
    return out
