"""The study journal file (Optuna's JournalFileBackend: one JSON record per line), checked and
mended in the user's terms. A record cut short at the end of the file (a worker killed while
writing it, a full disk) is dropped, under the journal's lock, before anything else is written:
no write ever lands on a partial line, and every complete record is kept. Damage that dropping
a cut record cannot mend is refused with the line it is on; the file is then left as it was.
Optuna-free: the storage passes the journal's lock in."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from ..atomic import write_bytes_atomic
from ..bounded import GIB, read_bytes_capped
from ..errors import KtgRuntimeError

# Optuna's JournalOperation codes (CREATE_STUDY = 0 ... DISCARD_TRIALS = 10)
OPERATIONS = frozenset(range(11))
JOURNAL_LIMIT = 4 * GIB  # a study of a million trials writes about 1 GiB
_START = b'{"op_code":'  # how Optuna begins every record it writes
_CAUSE = "a worker stopped while writing it, or the disk was full"


class Lock(Protocol):
    def acquire(self) -> bool: ...
    def release(self) -> None: ...


def warn(text: str) -> None:
    print(f"ktg: warning: {text}", file=sys.stderr, flush=True)


def is_record(line: bytes, operations: frozenset[int] = OPERATIONS) -> bool:
    """A whole journal record: a JSON object with a known integer ``op_code``."""
    try:
        value = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        return False
    op = value.get("op_code") if isinstance(value, dict) else None
    return isinstance(op, int) and not isinstance(op, bool) and op in operations


@dataclass
class Mended:
    """The journal's bytes with every mendable fault mended, and what was done."""

    data: bytes
    notes: list[str] = field(default_factory=list)


def mend(data: bytes, url: str) -> Mended:
    """Drop records cut short: at the end of the file, or at the start of a line that a later
    record was written onto (what Optuna's own append does after a cut). Raises
    KtgRuntimeError for damage that cannot be told from a cut (the file is not changed)."""
    lines = data.split(b"\n")
    tail = lines.pop()  # what follows the last line end: b"" in a whole file
    kept: list[bytes] = []
    notes: list[str] = []
    for number, line in enumerate(lines, start=1):
        if is_record(line):
            kept.append(line)
            continue
        _refuse_non_record(line, number, url)
        rest = _after_cut(line)
        if rest is not None:
            kept.append(rest)
            notes.append(
                f"line {number} of the study journal {url} began with a record cut short "
                f"({_CAUSE}) and the next record was written onto it: dropped the cut "
                f"record's {len(line) - len(rest):,} bytes; every complete record is kept"
            )
        elif number == len(lines) and not tail.strip():
            notes.append(_dropped_end(url, len(line) + 1))
        elif not line.strip():
            notes.append(f"dropped the empty line {number} of the study journal {url}")
        else:
            raise KtgRuntimeError(
                f"the study journal {url} is damaged at line {number}: it is not a complete "
                f"record, and {len(lines) - number} lines follow it (ktg mends only records "
                "cut short). Move the file aside and start a new study (--storage NEW_FILE)"
            )
    if tail.strip():
        if is_record(tail):
            kept.append(tail)
            notes.append(_ended_whole(url))
        else:
            notes.append(_dropped_end(url, len(tail)))
    elif tail:
        notes.append(_dropped_end(url, len(tail)))
    return Mended(b"".join(line + b"\n" for line in kept), notes)


def _ended_whole(url: str) -> str:
    return (
        f"the study journal {url} ended in a whole record without its line end ({_CAUSE}): "
        "the line end was added"
    )


def _dropped_end(url: str, size: int) -> str:
    return (
        f"the study journal {url} ended in a record cut short ({_CAUSE}): dropped its "
        f"{size:,} bytes; every complete record is kept"
    )


def _refuse_non_record(line: bytes, number: int, url: str) -> None:
    """JSON that is not a journal record is not a cut: it is another file, or another
    Optuna's journal."""
    try:
        value = json.loads(line)
    except ValueError:
        return  # not JSON: perhaps a cut record
    if number == 1 and not (isinstance(value, dict) and "op_code" in value):
        raise KtgRuntimeError(
            f"--storage {url} is not an Optuna journal file (its first line is not a study "
            "record); name a new file or an existing journal"
        )
    if isinstance(value, dict) and "op_code" in value:
        raise KtgRuntimeError(
            f"the study journal {url} holds a record of an operation this Optuna does not "
            f"know at line {number} (op_code {value['op_code']!r}): was it written by a "
            "newer Optuna? Upgrade optuna, or start a new study (--storage NEW_FILE)"
        )
    raise KtgRuntimeError(
        f"the study journal {url} is damaged at line {number}: it holds JSON that is not a "
        "study record. Move the file aside and start a new study (--storage NEW_FILE)"
    )


def _after_cut(line: bytes) -> bytes | None:
    """The whole record that follows a cut one on the same line, if there is one. Inside a
    record, '{"op_code":' only appears escaped (in a string), so it marks a record's start."""
    at = line.rfind(_START)
    if at > 0 and is_record(line[at:]):
        return line[at:]
    return None


def repair_journal(path: Path, url: str, lock: Lock) -> list[str]:
    """Mend the journal file in place under ``lock`` (the lock Optuna's writers take), warning
    what was done; the notes. A repair either truncates the file after its last whole record
    or replaces the file atomically."""
    if not _mended(_read(path, url), url).notes:  # the usual case: no lock taken
        return []
    with _held(lock, url):
        data = _read(path, url)  # again: a writer may have finished meanwhile
        fixed = _mended(data, url)
        try:
            if fixed.notes and data.startswith(fixed.data):
                os.truncate(path, len(fixed.data))
            elif fixed.notes:
                write_bytes_atomic(path, fixed.data)
        except OSError as exc:
            raise KtgRuntimeError(
                f"cannot mend the study journal {url}: {exc.strerror or exc}; it is unchanged"
            ) from None
    for note in fixed.notes:
        warn(note)
    return fixed.notes


def _mended(data: bytes, url: str) -> Mended:
    if data and not data.startswith(b"{"):  # every journal line is a JSON object
        raise KtgRuntimeError(
            f"--storage {url} is not an Optuna journal file; name a new file or an existing journal"
        )
    return mend(data, url)


def _read(path: Path, url: str) -> bytes:
    """The journal's bytes, bounded: a huge (or sparse) file is refused, not read into memory."""
    return read_bytes_capped(path, JOURNAL_LIMIT, "the study journal")


@contextlib.contextmanager
def _held(lock: Lock, url: str) -> Iterator[None]:
    """The journal's lock, held; an OSError taking it (a read-only folder) in words."""
    try:
        lock.acquire()
    except OSError as exc:
        raise KtgRuntimeError(
            f"cannot lock the study journal {url}: {exc.strerror or exc}"
        ) from None
    try:
        yield
    finally:
        lock.release()


def append(path: str, records: Sequence[dict[str, Any]], lock: Lock, url: str) -> None:
    """Append records as Optuna's JournalFileBackend does (one compact JSON object a line,
    fsynced, under ``lock``), after mending a partial last line."""
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    with _held(lock, url), open(path, "ab+") as f:
        note = mend_tail(f, url)
        f.seek(0, os.SEEK_END)
        f.write(text.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    if note:
        warn(note)


def mend_tail(f: IO[bytes], url: str) -> str | None:
    """Before an append, under the journal's lock: if the file ``f`` (opened ``ab+``) ends
    inside a line, drop that partial record (or end a whole one); what was done."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return None
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return None
    start = _line_start(f, size)
    f.seek(start)
    tail = f.read(size - start)
    if is_record(tail):
        f.write(b"\n")
        return _ended_whole(url)
    f.truncate(start)
    return _dropped_end(url, size - start)


def _line_start(f: IO[bytes], size: int, block: int = 1 << 16) -> int:
    """The offset just after the last line end of ``f`` (0 if it has none)."""
    end = size
    while end > 0:
        begin = max(0, end - block)
        f.seek(begin)
        at = f.read(end - begin).rfind(b"\n")
        if at >= 0:
            return begin + at + 1
        end = begin
    return 0
