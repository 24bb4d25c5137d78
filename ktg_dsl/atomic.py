"""Write files so that a reader sees the old file or the whole new one, never a part:
a temporary file in the same folder, flushed and fsynced, then renamed over the target.
A failure (disk full, no permission) removes the temporary file and leaves the target as it was.

Only regular files are replaced: a symbolic link is followed (its target is written), and a
device or pipe (``/dev/null``, a FIFO) is written in place; ``-`` is standard output.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import ArgumentError, KtgRuntimeError


def is_stream(path: str | os.PathLike[str]) -> bool:
    """``-`` (standard output), or an existing device, pipe or socket."""
    if str(path) == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def pid_lock(file: Path, cannot: str, busy: str) -> IO[str]:
    """Hold an exclusive advisory lock on ``file``, with this process's id written in it, for
    as long as the returned handle stays open (a killed holder's lock goes with it). Refused
    with ``cannot: <reason>`` when the file cannot be opened, or ``busy`` (its ``{pid}`` the
    holder's) while another process holds it."""
    import fcntl

    try:
        handle = open(file, "a+", encoding="utf-8")  # noqa: SIM115 - held open
    except OSError as exc:
        raise KtgRuntimeError(f"{cannot}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise KtgRuntimeError(busy.format(pid=holder)) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def check_not_inputs(outputs: dict[str, str | None], inputs: dict[str, str]) -> None:
    """Refuse an output that is an input of the command (e.g. ``{"-o": ...}`` against
    ``{"the spec": ...}``) or another output: the same file by name, through a link or by
    another path. ArgumentError, before anything is read or written."""
    seen = [(f"{what} {path}", path) for what, path in inputs.items()]
    for flag, out in outputs.items():
        if out is None or is_stream(out):
            continue
        for what, other in seen:
            if _same_file(out, other):
                raise ArgumentError(
                    f"{flag} {out} is {what}: writing it would replace it; name another file"
                )
        seen.append((f"the {flag} output {out}", out))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise KtgRuntimeError now if ``path`` cannot be written (before any work is done)."""
    if not is_stream(path):
        _check_folder(Path(os.path.realpath(path)), shown=Path(path))


def check_replaceable(
    path: str | os.PathLike[str], option: str, what: str, ours: Callable[[Path], bool]
) -> None:
    """Refuse (ArgumentError, exit 2) to write over an existing file that ``ours`` does not
    recognise as ``what`` (``-o spec.yaml`` would destroy the spec); a new or empty file, a
    folder, a device or a pipe is left to the write, as is one that cannot be read."""
    file = Path(path)
    try:
        if not file.is_file() or file.stat().st_size == 0:
            return
        known = ours(file)
    except OSError:  # cannot be read: writing it says what is wrong
        return
    if not known:
        raise ArgumentError(
            f"{option} {path} exists and is not {what}: writing it would replace it; name "
            "another file (or remove it first)"
        )


def file_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of ``path`` (how a file of a known format begins)."""
    with path.open("rb") as f:
        return f.read(size)


def _check_folder(path: Path, shown: Path | None = None) -> None:
    shown = shown or path
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise KtgRuntimeError(f"cannot write {shown}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise KtgRuntimeError(f"cannot write {shown}: {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise KtgRuntimeError(f"cannot write {shown}: the folder {folder} is not writable")
    if path.is_dir():
        raise KtgRuntimeError(f"cannot write {shown}: it is a folder")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[bytes]]:
    """``with atomic_open(p) as f: f.write(...)`` -> p appears complete or not at all."""
    if is_stream(path):
        with _stream(path) as f:
            yield f
        return
    target = Path(os.path.realpath(path))  # through a symbolic link: replace what it names
    _check_folder(target, shown=Path(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise KtgRuntimeError(
                f"cannot write {target}: {exc.strerror or exc}; the "
                "previous file, if any, is unchanged"
            ) from exc
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def _stream(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Standard output, or a device or pipe written in place (never replaced)."""
    if str(path) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        with open(path, "wb") as f:
            yield f
            f.flush()
    except OSError as exc:
        raise KtgRuntimeError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not supported everywhere (e.g. some network mounts).
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_with(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Atomically write whatever ``writer(f)`` writes (e.g. ``torch.save(obj, f)``)."""
    with atomic_open(path) as f:
        writer(f)
