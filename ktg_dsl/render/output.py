"""Writing what ``ktg render`` draws: the output format from the file name, Graphviz run on the
Graphviz source, and both files (picture, schedule) checked writable before anything is
written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import graphviz

from ..atomic import check_writable, write_bytes_atomic, write_text_atomic
from ..errors import ArgumentError, KtgRuntimeError
from ..graph import GraphReport
from ..spec.schema import Spec
from .graph import build_dot, drawn_edges
from .ports import head_ports
from .schedule import schedule_csv, schedule_svg

FORMATS = ("svg", "png", "pdf", "dot")
MAX_CSV_EPOCHS = 100_000


PDF_DATE = re.compile(rb"/CreationDate \(D:\d{14}Z\)")
# Graphviz names an edge by its nodes and ports ("wide:s->mid:n"), in a comment and its
# <title>; the picture names it by its key, which its tooltip starts with ("wide.b2->mid.b2:
# ..."), so that a logits edge and a feature edge between two nodes have names of their own
EDGE_TITLE = re.compile(
    rb'<!-- [^>]* -->(\n<g id="[^"]*" class="edge[^"]*">\n)<title>[^<]*</title>'
    rb'(\n<g id="a_[^"]*"><a xlink:title="([^":]*):)'
)
# where an edge has no tooltip to name it (a Graphviz that writes it otherwise): its nodes,
# without ports ("wide:s->mid:n" -> "wide->mid")
_NAME, _PORTS = rb"((?:[A-Za-z0-9_]|&#45;)+)", rb"(?::(?:[A-Za-z0-9_]|&#45;)+)*"
PORT_TITLE = re.compile(rb"(<title>|<!-- )%s%s&#45;&gt;%s%s(</title>| -->)" % ((_NAME, _PORTS) * 2))
NO_DOT = """cannot draw {out}: the Graphviz program 'dot' was not found on PATH.
  Install Graphviz, then run the command again:
    Debian/Ubuntu:  sudo apt-get install graphviz
    macOS:          brew install graphviz
    conda:          conda install -c conda-forge graphviz
  Or write the Graphviz source, which needs no program: ktg render SPEC -o graph.dot"""


def output_format(path: str, given: str | None) -> str:
    """``given``, else the output's extension; standard output (``-``) is SVG."""
    if given:
        return given
    if path == "-":
        return "svg"
    ext = Path(path).suffix.lower().lstrip(".")
    fmt = "dot" if ext == "gv" else ext
    if fmt not in FORMATS:
        raise ArgumentError(
            f"cannot tell the format of '{path}' from its extension; name the file "
            f"*.svg, *.png, *.pdf or *.dot, or give --format {{{','.join(FORMATS)}}}"
        )
    return fmt


def check_options(
    output: str, fmt: str | None, epochs: int, epoch: int | None, schedule: str | None
) -> str:
    """The output format; raises ArgumentError for options that cannot work."""
    fmt = output_format(output, fmt)
    if epoch is not None and not 0 <= epoch < epochs:
        raise ArgumentError(
            f"--epoch {epoch} is outside the run: epochs are counted from 0, so 0..{epochs - 1}"
        )
    suffix = Path(schedule).suffix.lower() if schedule else ""
    if schedule and suffix not in (".svg", ".csv"):
        raise ArgumentError(f"--schedule {schedule}: name a .svg (a chart) or .csv (a table) file")
    if suffix == ".csv" and epochs > MAX_CSV_EPOCHS:
        raise ArgumentError(
            f"--schedule {schedule}: a table of {epochs} epochs is too long; draw it as .svg"
        )
    return fmt


def ports(spec: Spec, report: GraphReport) -> dict[str, str]:
    """Where arrows enter their nodes, from a first layout of the picture without ``--epoch``
    or ``--show-cutoff`` (which never change the layout); none without Graphviz (``.dot``
    output needs no program; the other formats then say that it is missing)."""
    try:
        plain = build_dot(spec, report).pipe(format="plain", quiet=True).decode("utf-8")
        return head_ports(plain, drawn_edges(spec, report, show_cutoff=True))
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError, ValueError, IndexError):
        return {}  # no program, or output this version of Graphviz writes otherwise


def render_bytes(dot: graphviz.Digraph, fmt: str, out: str) -> bytes:
    if fmt == "dot":
        return dot.source.encode("utf-8")
    if fmt == "png":
        dot = dot.copy()
        dot.attr("graph", dpi="144")  # crisp on high-density screens; svg/pdf are vectors
    try:
        data: bytes = dot.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        raise KtgRuntimeError(NO_DOT.format(out=out)) from None
    except graphviz.CalledProcessError as exc:
        stderr = (exc.stderr or b"").decode("utf-8", "replace").strip()
        raise KtgRuntimeError(f"Graphviz could not draw {out}: {stderr or exc}") from None
    if fmt == "svg":
        data = EDGE_TITLE.sub(rb"<!-- \3 -->\1<title>\3</title>\2", data)
        data = PORT_TITLE.sub(rb"\1\2&#45;&gt;\3\4", data)
    if fmt == "pdf":
        # cairo stamps the time into PDFs (older versions ignore SOURCE_DATE_EPOCH); a fixed
        # date of the same length keeps the file reproducible and its byte offsets valid
        data = PDF_DATE.sub(rb"/CreationDate (D:20000101000000Z)", data)
    return data


@dataclass(frozen=True)
class Written:
    path: str
    what: str  # e.g. "3 nodes, 6 edges"


def render_files(
    spec: Spec,
    report: GraphReport,
    *,
    output: str,
    fmt: str | None = None,
    epoch: int | None = None,
    show_cutoff: bool = False,
    schedule: str | None = None,
) -> list[Written]:
    """Draw the graph to ``output`` (and the gate schedule to ``schedule``): options checked
    and both targets known writable first, everything built in memory, then written."""
    epochs = spec.train.epochs
    fmt = check_options(output, fmt, epochs, epoch, schedule)
    for target in (output, schedule):  # both writable, or neither is written
        if target:
            check_writable(target)
    dot = build_dot(spec, report, epoch=epoch, show_cutoff=show_cutoff, ports=ports(spec, report))
    data = render_bytes(dot, fmt, output)
    edges = drawn_edges(spec, report, show_cutoff)
    chart = None
    if schedule:
        draw = schedule_svg if schedule.lower().endswith(".svg") else schedule_csv
        chart = draw(spec, edges)
    write_bytes_atomic(output, data)
    written = [Written(output, f"{_count(len(spec.nodes), 'node')}, {_count(len(edges), 'edge')}")]
    if schedule and chart is not None:
        write_text_atomic(schedule, chart)
        written.append(
            Written(schedule, f"{_count(len(edges), 'edge')} over {_count(epochs, 'epoch')}")
        )
    return written


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
