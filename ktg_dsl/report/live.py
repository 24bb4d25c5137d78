"""``ktg train --report``: after every epoch the run's page (``report.html`` in its directory)
is written again, whole (a temporary file renamed over the old one: a reload never sees half
a page), and the graph's picture at that epoch goes to TensorBoard as an image
(``tb/ktg.graph``), each edge drawn as the page draws it: width by its gate weight, colour by
its share of its receiver's loss."""

from __future__ import annotations

import io
import re
import sys
from typing import Any

from ..atomic import check_not_inputs, write_text_atomic
from ..errors import ArgumentError, KtgRuntimeError
from ..graph import GraphReport
from ..run.rundir import REPORT, TB_GRAPH, RunDir
from ..spec.schema import Spec
from .build import Kind, inputs_of
from .rundata import RunData, load_run
from .runpage import run_document
from .svg import graph_svg

RAMP = ((69, 117, 180), (253, 174, 97), (215, 48, 39))  # share of loss 0, 0.5, 1 (report.js)
GREY = "#8a8a8a"


def ramp(share: float) -> str:
    """The page's colour for an edge's share of its receiver's loss, as #rrggbb."""
    s = max(0.0, min(1.0, share)) * 2
    i = min(1, int(s))
    f = s - i
    rgb = [round(a + (b - a) * f) for a, b in zip(RAMP[i], RAMP[i + 1], strict=True)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def edge_looks(data: RunData, i: int) -> dict[str, tuple[str, float]]:
    """Per edge key, its colour (with the page's opacity as alpha) and pen width at the
    ``i``-th finished epoch."""
    totals: dict[str, float] = {}
    for e in data.edges:
        if e.term[i] is not None:
            totals[e.receiver] = totals.get(e.receiver, 0.0) + float(e.term[i] or 0.0)
    top = max([1.0, *(w for e in data.edges for w in e.weight if w is not None)])
    out = {}
    for e in data.edges:
        w, t, total = e.weight[i], e.term[i], totals.get(e.receiver)
        on = None if w is None else min(w / top, 1.0)
        color = GREY if t is None or not total else ramp(t / total)
        opacity = 0.35 if on is None else (0.12 if w == 0 else 0.35 + 0.65 * on)
        out[e.key] = (f"{color}{round(255 * opacity):02x}", 1.0 if on is None else 0.6 + 5 * on)
    return out


def _restyled(line: str, looks: dict[str, tuple[str, float]]) -> str:
    """A line of the Graphviz source, an edge's colour and pen replaced (found by its id; a
    feature edge's double line and an edge laid out unseen keep their look)."""
    found = re.search(r'id="edge:([^"]*)"', line)
    if not found or found.group(1) not in looks or re.search(r'style="?invis', line):
        return line
    color, width = looks[found.group(1)]
    if ":invis:" in line:  # a feature edge's double line (render/graph.py): kept double
        color, width = f"{color}:invis:{color}", 0.3 + width / 2
    line = re.sub(r'(?<![a-z])color="?#[^" \]]*"?', f'color="{color}"', line, count=1)
    return re.sub(r"penwidth=\S+?(?=[ \]])", f"penwidth={width:.2f}", line, count=1)


class LiveReport:
    """An epoch hook (``Recipe(hooks=...)``) that keeps a run's page and picture current."""

    def __init__(self, spec: Spec, graph: GraphReport, run: RunDir, tensorboard: bool = True):
        self.spec, self.graph, self.run = spec, graph, run
        self.tensorboard = tensorboard
        self._writer: Any = None
        self._drawn: tuple[str, str, Any] | None = None  # spec text, page SVG, Graphviz source
        self.failed = False

    def _draw(self) -> tuple[str, str, Any]:
        """The spec's text and the graph, drawn once (the layout never changes)."""
        if self._drawn is None:
            from ..render.graph import build_dot
            from ..render.output import ports
            from ..run.state import resolved_spec_text

            spec, graph = self.spec, self.graph
            dot = build_dot(spec, graph, ports=ports(spec, graph))
            self._drawn = (resolved_spec_text(spec), graph_svg(spec, graph), dot)
        return self._drawn

    def __call__(self, epoch: int, rows: Any) -> None:
        """The page and the picture after ``epoch``. A page that cannot be made (no Graphviz,
        a full disk) is said once, and the run trains on without it."""
        if self.failed:
            return
        try:
            text, svg, _ = self._draw()
            data, _, _ = load_run(self.run.path, (text, self.spec, self.graph))
            live = epoch + 1 < self.spec.train.epochs
            page = self.run.path / REPORT
            # a report.html that links to the run's log or spec: writing would replace it
            check_not_inputs({"the page": str(page)}, inputs_of(Kind.RUN, str(self.run.path)))
            write_text_atomic(page, run_document(data, svg, live=live))
            if self.tensorboard:
                self._image(data, epoch)
        except (KtgRuntimeError, ArgumentError, OSError) as exc:
            self.failed = True
            print(
                f"ktg: warning: --report: {exc}; the run goes on without its page",
                file=sys.stderr,
            )

    def picture(self, data: RunData, epoch: int) -> bytes:
        """The graph at the last finished epoch as PNG (Graphviz)."""
        from ..render.output import render_bytes

        looks = edge_looks(data, len(data.epochs) - 1)
        dot = self._draw()[2].copy()
        dot.body = [_restyled(line, looks) for line in dot.body]
        dot.attr(
            "graph", label=f"{self.spec.name} at epoch {epoch + 1} of {self.spec.train.epochs}"
        )
        return render_bytes(dot, "png", "the graph picture")

    def _image(self, data: RunData, epoch: int) -> None:
        import numpy as np
        from PIL import Image
        from torch.utils.tensorboard import SummaryWriter

        if self._writer is None:
            self._writer = SummaryWriter(str(self.run.tensorboard(TB_GRAPH)))
        image = np.asarray(Image.open(io.BytesIO(self.picture(data, epoch))).convert("RGB"))
        self._writer.add_image("graph", image, epoch + 1, dataformats="HWC")
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
