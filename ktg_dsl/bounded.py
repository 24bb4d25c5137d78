"""Reading back what ktg (or someone else) left on disk, with a size limit: a run's manifest,
a study's ``study.json``, a search journal, a metrics log. Spec files have their own capped
reader (spec/loader.py); these files are not specs, but a damaged or hostile one (a 6 GB sparse
file, a FIFO) must still end in a message, never in a MemoryError or a read that never ends.

Only a regular file is read (a symbolic link to one is fine); at most ``limit`` bytes plus one
are read, so a file that grows while it is read is still refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import KtgRuntimeError

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


class ReadRefused(KtgRuntimeError):
    """A file that cannot be read back: missing, not a regular file, too large, not UTF-8."""


def size_text(count: int) -> str:
    """``1.5 GiB``, ``12.0 MiB``, ``300 bytes``."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if count >= unit:
            return f"{count / unit:.1f} {name}"
    return f"{count:,} bytes"


def check_regular(path: str | os.PathLike[str], limit: int, what: str) -> int:
    """The size of ``path``, a regular file of at most ``limit`` bytes; ReadRefused naming
    ``what`` (e.g. ``the study manifest``) otherwise. Nothing is read."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ReadRefused(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ReadRefused(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        raise ReadRefused(f"{what} {path} is not a regular file (a FIFO, device or socket)")
    if info.st_size > limit:
        raise _too_large(path, what, info.st_size, limit)
    return info.st_size


def read_bytes_capped(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path`` if it holds at most ``limit`` of them."""
    check_regular(path, limit, what)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)  # one more: a file that grew since the check is told
    except OSError as exc:
        raise ReadRefused(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except MemoryError:  # a limit above what this machine can hold
        raise _too_large(path, what, limit, limit) from None
    if len(data) > limit:
        raise _too_large(path, what, len(data), limit)
    return data


def read_text_capped(path: str | os.PathLike[str], limit: int, what: str) -> str:
    """The UTF-8 text of the regular file ``path`` if it holds at most ``limit`` bytes."""
    data = read_bytes_capped(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadRefused(
            f"{what} {path} is not UTF-8 text (byte {exc.start:,} is 0x{data[exc.start]:02x})"
        ) from None


def read_tail(path: str | os.PathLike[str], limit: int) -> str:
    """The last ``limit`` bytes of ``path`` as text (undecodable bytes replaced, a first line
    cut by the window dropped): a log's end, however long the log grew. Raises OSError."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - limit))
        data = f.read(limit)
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        text = text.partition("\n")[2]
    return text


def _too_large(path: str | os.PathLike[str], what: str, size: int, limit: int) -> ReadRefused:
    return ReadRefused(
        f"{what} {Path(path)} is {size_text(size)}, more than the {size_text(limit)} ktg reads "
        "for it: it is damaged or not what it should be (nothing was read)"
    )
