"""The progress display of a run: a tqdm bar per epoch on a terminal, one line per epoch
otherwise."""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Progress:
    """A tqdm bar per epoch on a terminal; one line per epoch otherwise."""

    def __init__(self, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.bar_ok = enabled and stream.isatty()
        self.enabled = enabled
        self._bar: Any = None

    def start(self, epoch: int, epochs: int, total: int, initial: int = 0) -> None:
        if self.bar_ok:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=f"epoch {epoch + 1}/{epochs}",
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )

    def update(self, n: int, stats: dict[str, tuple[float, float]] | None) -> None:
        if self._bar is None:
            return
        self._bar.update(n)
        if stats:
            self._bar.set_postfix_str(
                "  ".join(f"{k} {loss:.3f}/{top1:.1f}%" for k, (loss, top1) in stats.items())
            )

    def end(self, line: str) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.enabled:
            print(line, file=self.stream, flush=True)
