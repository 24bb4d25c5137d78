"""The study's progress display: a line per finished (or failed) run, and on a terminal a
status line below them (runs done, failed, those running and for how long), redrawn every
second."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from .results import RunRecord

SHOWN_NODES = 4  # a run's line names this many trained nodes at most
REFRESH_S = 1.0


def run_line(record: RunRecord, split: str) -> str:
    """``best test top-1 a 91.2% (epoch 17), b 90.1% (epoch 12), 12.3 s``"""
    names = record.trained or list(record.nodes)
    cells = []
    for name in names[:SHOWN_NODES]:
        node = record.nodes[name]
        if node.best is None:
            cells.append(f"{name} -")
        else:
            cells.append(f"{name} {node.best:.1f}% (epoch {node.best_epoch})")
    if len(names) > SHOWN_NODES:
        cells.append(f"+{len(names) - SHOWN_NODES} nodes")
    seconds = f", {record.seconds:.1f} s" if record.seconds is not None else ""
    return f"best {split} top-1 " + ", ".join(cells) + seconds


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Display:
    def __init__(
        self,
        total: int,
        done: int = 0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.done, self.failed = total, done, 0
        self.stream: TextIO = stream or sys.stderr  # looked up now: tests swap sys.stderr
        self.clock = clock
        self.tty = self.stream.isatty()
        self.running: dict[str, float] = {}  # label -> when it started
        self.began = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Display:
        if self.tty:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._clear()

    def _tick(self) -> None:
        while not self._stop.wait(REFRESH_S):
            with self._lock:
                self._draw()

    def status(self) -> str:
        now = self.clock()
        parts = [f"{self.done}/{self.total} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.running:
            parts.append(
                "running "
                + ", ".join(f"{k} ({_duration(now - t)})" for k, t in self.running.items())
            )
        return "; ".join(parts) + f"; {_duration(now - self.began)}"

    def _clear(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _draw(self) -> None:
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1  # one line: \r redraws it
            self.stream.write("\r\x1b[K" + self.status()[:width])
            self.stream.flush()

    def line(self, text: str) -> None:
        with self._lock:
            self._clear()
            print(text, file=self.stream, flush=True)
            self._draw()

    def started(self, label: str) -> None:
        with self._lock:
            self.running[label] = self.clock()
            self._draw()

    def finished(self, label: str, text: str) -> None:
        self.running.pop(label, None)
        self.done += 1
        self.line(f"[{self.done}/{self.total}] {label}: {text}")

    def failed_run(self, label: str, reason: str) -> None:
        self.running.pop(label, None)
        self.failed += 1
        self.line(f"[failed] {label}: {reason}")

    def stopped(self, label: str) -> None:
        self.running.pop(label, None)
        self.line(f"[stopped] {label}: stopped; it continues where it stopped on the next run")
