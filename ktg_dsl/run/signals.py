"""Stopping politely: Ctrl-C (SIGINT) or a cluster scheduler's SIGTERM asks a run to stop after
its current batch and save; a second Ctrl-C aborts at once without saving."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any


class StopRequest:
    """Set by the signal handlers that :meth:`catching` installs."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # a second Ctrl-C: stop now, without saving
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nktg: stopping after this batch and saving last.pt (Ctrl-C again to abort "
            "without saving)",
            flush=True,
        )

    @contextlib.contextmanager
    def catching(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM while inside; the previous handlers come back after.
        Outside the main thread (a search worker thread) signals cannot be caught, and the
        handlers are left as they are."""
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):
                previous[sig] = signal.signal(sig, self._handle)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
