"""``ktg render``: the graph as Graphviz (``graph``; its nodes and taps in ``nodes``, where
edges meet them in ``ports``), its gates over time (``schedule``), and the files written
(``output``). Torch-free."""

from .graph import build_dot, drawn_edges
from .output import FORMATS, Written, output_format, render_bytes, render_files
from .schedule import schedule_csv, schedule_svg

__all__ = [
    "FORMATS",
    "Written",
    "build_dot",
    "drawn_edges",
    "output_format",
    "render_bytes",
    "render_files",
    "schedule_csv",
    "schedule_svg",
]
