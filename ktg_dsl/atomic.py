"""Write files so that a reader sees the old file or the whole new one, never a part:
a temporary file in the same folder, flushed and fsynced, then renamed over the target.
A failure (disk full, no permission) removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import KtgRuntimeError


def _check_folder(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise KtgRuntimeError(f"cannot write {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise KtgRuntimeError(f"cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise KtgRuntimeError(f"cannot write {path}: the folder {folder} is not writable")
    if path.is_dir():
        raise KtgRuntimeError(f"cannot write {path}: it is a folder")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[bytes]]:
    """``with atomic_open(p) as f: f.write(...)`` -> p appears complete or not at all."""
    target = Path(path)
    _check_folder(target)
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
