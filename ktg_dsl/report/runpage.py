"""A run's page: the graph (each edge restyled by the page's script from its gate weight and
loss term at the chosen epoch, each node's accuracy on it), the epoch slider with play, the
curves per node with the epoch marked, the numbers at that epoch, the environment, timings
and the spec."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .page import details, document, esc, number, pre, table
from .plot import Series, chart, legend
from .rundata import RunData, load_run
from .svg import graph_svg

INFO_ROWS = (
    ("device", "device"),
    ("device_name", "device name"),
    ("precision", "precision"),
    ("channels_last", "channels last"),
    ("threads", "threads"),
    ("threads_why", "threads chosen by"),
    ("data", "data"),
    ("steps_per_epoch", "steps per epoch"),
    ("torch", "torch"),
    ("python", "python"),
    ("ktg", "ktg"),
    ("host", "host"),
    ("started", "started"),
)


def run_page(path: Path, *, live: bool = False) -> str:
    """The whole page of a run directory (``live``: written while the run trains)."""
    data, spec, graph = load_run(path)
    return run_document(data, graph_svg(spec, graph), live=live)


def run_document(data: RunData, svg: str, *, live: bool = False) -> str:
    done, total = len(data.epochs), data.total_epochs
    state = f"{done} of {total} epochs" + (" so far (training: reload for more)" if live else "")
    knn = data.split.startswith("kNN")  # self-supervised: train top-1 is contrastive, no loss
    body = [
        f"<header><h1>{esc(data.name)}</h1><p class='sub'>run {esc(data.path)} · {state}"
        f"{' · written ' + time.strftime('%H:%M:%S') if live else ''}</p></header>",
        _controls(data),
        '<main class="run">',
        f'<section class="graph-box"><div class="graph-wrap">{svg}</div>{_key()}</section>',
        f'<section class="curves">{_curves(data)}</section>',
        "</main>",
        '<section class="numbers"><h2>At <span class="epoch-text"></span></h2>',
        '<div class="tables"><div><h3>Edges</h3>',
        table(["edge", "gate", "weight", "loss", "term", "share of loss"], [], ident="edge-table"),
        "</div><div><h3>Nodes</h3>",
        table(
            [
                "node",
                "contrastive top-1" if knn else "train top-1",
                f"{data.split} top-1",
                "train loss",
                "eval loss (none: kNN)" if knn else f"{data.split} loss",
                "lr",
            ],
            [],
            ident="node-table",
        ),
        "</div></div></section>",
        _about(data),
    ]
    return document(f"{data.name}: ktg report", "run", "\n".join(body), {"run": data.as_json()})


def _controls(data: RunData) -> str:
    last = max(len(data.epochs) - 1, 0)
    return (
        '<nav class="controls">'
        '<button id="play" type="button" title="play the epochs">▶ play</button>'
        f'<input id="epoch" type="range" min="0" max="{last}" value="{last}" step="1" '
        'aria-label="epoch">'
        '<span id="epoch-label" class="epoch-text"></span></nav>'
    )


def _key() -> str:
    return (
        '<p class="key-note">Edge width and opacity: the gate weight at the epoch; colour: the '
        "edge's share of its receiver's loss (<span class=\"ramp\"></span> 0 → 1; grey: not "
        "recorded). Hover an edge for its numbers; under each node its "
        "evaluation top-1.</p>"
    )


def _curves(data: RunData) -> str:
    xs = [e + 1 for e in data.epochs]  # tables and plots count epochs from 1
    names = list(data.nodes)
    val = [Series(n, data.nodes[n]["val_top1"]) for n in names]
    train = [Series(n, data.nodes[n]["train_loss"]) for n in names]
    terms = [Series(e.key, s) for e, s in zip(data.edges, shares(data), strict=True) if any(s)]
    out = [
        legend([(n, False) for n in names]),
        chart(f"{data.split} top-1 (%)", xs, val, marker=True),
        chart("train loss", xs, train, marker=True),
    ]
    if terms:
        out.append(chart("each edge's share of its receiver's loss (%)", xs, terms, marker=True))
        out.append(legend([(s.label, False) for s in terms]))
    return "\n".join(out)


def shares(data: RunData) -> list[list[float | None]]:
    """Per edge and epoch, its term over the sum of its receiver's terms, in percent (the
    page's colour); None where the log has no terms."""
    out: list[list[float | None]] = []
    for e in data.edges:
        mates = [m for m in data.edges if m.receiver == e.receiver]
        row: list[float | None] = []
        for i, t in enumerate(e.term):
            total = sum(m.term[i] or 0.0 for m in mates)
            row.append(None if t is None or not total else 100 * t / total)
        out.append(row)
    return out


def _about(data: RunData) -> str:
    info = data.info
    rows = [(label, info[k]) for k, label in INFO_ROWS if k in info]
    rows += [(k, v) for k, v in info.items() if k not in dict(INFO_ROWS) and _short(v)]
    env = table(["", ""], rows, cls="kv") if rows else "<p>no run.json in this run</p>"
    times = [t for t in data.epoch_time if t is not None]
    timing = table(
        ["", ""],
        [
            ("epochs done", f"{len(data.epochs)} of {data.total_epochs}"),
            ("training time", f"{number(data.elapsed, 1)} s"),
            ("mean epoch", f"{number(sum(times) / len(times) if times else None, 2)} s"),
            ("fastest / slowest epoch", _range(times)),
        ],
        cls="kv",
    )
    return (
        '<section class="about">'
        + details("Environment", env, open_=True)
        + details("Timings", timing, open_=True)
        + details("Spec (spec.resolved.yaml)", pre(data.spec_text))
        + "</section>"
    )


def _range(times: list[float]) -> str:
    return f"{min(times):.2f} s / {max(times):.2f} s" if times else "–"


def _short(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(str(value)) < 200
