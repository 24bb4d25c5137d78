"""Read a spec file into plain data plus a source map (the line and column of every key).

YAML goes through PyYAML's *safe* composer only: no tag can construct a Python object, and the
node tree is turned into data here, so duplicate keys and alias bombs are caught with their
position. JSON goes through the standard ``json`` module (for its exact syntax errors) and then a
small position scanner that records where each key stands.
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path as FsPath
from typing import Any

from ..errors import SpecError
from .json_reader import load_json
from .source import MAX_SPEC_BYTES, LoadedSpec, SourceMap, fail
from .yaml_reader import load_yaml

__all__ = ["MAX_SPEC_BYTES", "LoadedSpec", "SourceMap", "load_file", "load_text", "read_text"]


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
            raise fail(
                name,
                f"is a symbolic link to '{target}', which does not exist",
                hint="check where the link points",
                unreadable=True,
            ) from None
        raise fail(name, "no such file", hint="check the path", unreadable=True) from None
    except PermissionError:
        raise fail(
            name, "permission denied", hint="check the file's permissions", unreadable=True
        ) from None
    except OSError as exc:  # a link loop, a name too long, ...
        raise fail(name, f"cannot read: {exc.strerror or exc}", unreadable=True) from None
    except ValueError:  # an embedded NUL character (only from the Python API)
        raise fail(name, "the path contains a NUL character", unreadable=True) from None
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
        raise fail(
            name, "permission denied", hint="check the file's permissions", unreadable=True
        ) from None
    except OSError as exc:
        raise fail(name, f"cannot read: {exc.strerror or exc}", unreadable=True) from None
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
        raise fail(
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
    raise fail(
        name,
        f"is {kind}, not a spec file",
        hint="ktg reads specs from regular files; save the spec to a file first",
        unreadable=True,
    )


def _too_big(name: str, size: str) -> SpecError:
    return fail(
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
        raise fail(
            name,
            f"the file is {wide}; ktg reads UTF-8",
            hint=f"save the spec as UTF-8, e.g. iconv -f {wide.split()[0]} -t UTF-8",
        )
    if b"\x00" in raw:
        raise fail(name, "binary data, not a YAML or JSON text", hint="is this the right file?")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail(name, "not UTF-8 text", line=line, hint="save the spec as UTF-8") from None
    if not text.strip():
        raise fail(name, "empty spec", hint="start from specs/quickstart.yaml")
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
        data, source = load_json(text, file)
    else:
        data, source = load_yaml(text, file)
    if data is None:
        raise fail(file, "empty spec", hint="start from specs/quickstart.yaml")
    if not isinstance(data, dict):
        raise fail(
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
