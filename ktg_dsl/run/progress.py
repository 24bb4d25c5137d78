"""The progress display of a run.

On a terminal: a tqdm bar per epoch that moves every step (a counter: no host sync) and shows
each node's running loss and top-1, refreshed on a clock (about twice a second, one host sync
each), whatever the epoch's length. Elsewhere (a log file, CI): a table, its header once and
one row per epoch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

Peek = Callable[[], dict[str, tuple[float, float]]]  # node -> (running loss, running top-1 %)
REFRESH_S = 0.5
WIDE = 4  # above this many trained nodes, the table shows the evaluation top-1 only


class Progress:
    def __init__(
        self,
        enabled: bool,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr  # as it is now, not at import
        self.enabled = enabled
        self.bar_ok = enabled and self.stream.isatty()
        self.clock = clock
        self._bar: Any = None
        self._shown = 0.0
        self.steps = 0  # steps shown in the current epoch's bar
        self._header = False
        self.writer = True  # status lines (say) are shown even without the bar and table

    def keep_if(self, writer: bool) -> None:
        """Show anything only where ``writer`` (rank 0 of several processes)."""
        self.enabled = self.enabled and writer
        self.bar_ok = self.bar_ok and writer
        self.writer = writer

    def start(self, epoch: int, epochs: int, total: int, initial: int = 0) -> None:
        self.steps = initial
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
            self._shown = self.clock()

    def step(self, peek: Peek) -> None:
        """One training step done; ``peek`` is called (a host sync) only when it is time to
        refresh the running numbers."""
        if self._bar is None:
            return
        self._bar.update(1)
        self.steps += 1
        now = self.clock()
        if now - self._shown >= REFRESH_S:
            self._shown = now
            self._bar.set_postfix_str(
                "  ".join(f"{k} {loss:.3f}/{top1:.1f}%" for k, (loss, top1) in peek().items())
            )

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def end(self, epoch: int, epochs: int, rows: dict[str, dict[str, Any]], eval_name: str) -> None:
        """The epoch's row of the table (its header before the first)."""
        self._close()
        if not self.enabled:
            return
        trained = [n for n, r in rows.items() if not r["frozen"]]
        wide = len(trained) > WIDE
        if not self._header:
            self._header = True
            print(_header(trained, wide, eval_name), file=self.stream, flush=True)
        print(_row(epoch, epochs, trained, rows, wide), file=self.stream, flush=True)

    def say(self, line: str) -> None:
        """A status line above the bar, which goes on (or between the table's rows); shown by
        the writer process even with ``--no-progress``."""
        if not self.writer:
            return
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def note(self, line: str) -> None:
        self._close()
        if self.enabled:
            print(line, file=self.stream, flush=True)


def _cell_width(name: str, wide: bool) -> int:
    return max(len(name), 7 if wide else 22)


def _header(trained: list[str], wide: bool, eval_name: str) -> str:
    if wide:
        cells = [n.rjust(_cell_width(n, wide)) for n in trained]
        return f"{'epoch':>9}  " + "  ".join(cells) + f"   ({eval_name} top-1 %)"
    names = [n.center(_cell_width(n, wide)) for n in trained]
    units = [
        f"{'loss':>6} {'train':>6} {eval_name:>7}".rjust(_cell_width(n, wide)) for n in trained
    ]
    return f"{'':>9}  " + "  ".join(names) + f"\n{'epoch':>9}  " + "  ".join(units) + "   time"


def _pct(value: float | None) -> str:
    return f"{value:.2f}%" if value is not None else "-"


def _row(epoch: int, epochs: int, trained: list[str], rows: dict[str, Any], wide: bool) -> str:
    cells = []
    for name in trained:
        r = rows[name]
        w = _cell_width(name, wide)
        if wide:
            cells.append(_pct(r["val_top1"]).rstrip("%").rjust(w))
        else:
            text = f"{r['train_loss']:6.3f} {_pct(r['train_top1']):>7} {_pct(r['val_top1']):>7}"
            cells.append(text.rjust(w))
    first: dict[str, Any] = next(iter(rows.values()), {})
    seconds = first.get("epoch_time")
    time_cell = f"   {seconds:.1f}s" if seconds is not None else ""
    return f"{f'{epoch + 1}/{epochs}':>9}  " + "  ".join(cells) + time_cell
