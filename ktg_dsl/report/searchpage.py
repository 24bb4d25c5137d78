"""A search's page: the objective over the trials, the best trials' graphs side by side (each
edge styled by that trial's last epoch), which choice of gate on each edge (and model on each
node) went with better trials, and the sortable table of every trial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..errors import KtgRuntimeError
from .page import Markup, document, esc, href, number, table
from .plot import Series, chart, legend
from .rundata import load_run
from .runpage import run_document
from .searchdata import SearchData, Trial, choice_summary, open_search
from .svg import graph_svg


def search_page(url: str, name: str | None, top: int, out: Path | None = None) -> str:
    data = open_search(url, name)
    if not data.trials:
        raise KtgRuntimeError(f"study '{data.name}' in {url} has no trial yet")
    best = data.best(top)
    figures, graphs, pages = _best_graphs(best)
    better = "higher" if data.direction == "maximize" else "lower"
    body = [
        f"<header><h1>Search {esc(data.name)}</h1><p class='sub'>{esc(url)} · "
        f"{len(data.trials)} trials ({_counts(data)}) · objective {esc(data.metric)}, "
        f"{better} is better</p></header>",
        "<h2>Objective over trials</h2>",
        _objective(data),
        _best_heading(len(best)),
        '<div class="side-by-side">' + "".join(figures) + "</div>",
        "<h2>Which choice went with better trials</h2>",
        _choices(data),
        "<h2>Trials</h2><p class='note'>Click a heading to sort.</p>",
        _trials(data, out),
        '<h3 id="run-frame-title"></h3><iframe id="run-frame" title="run page"></iframe>',
    ]
    title = f"search {data.name}: ktg report"
    return document(title, "search", "\n".join(body), {"graphs": graphs, "pages": pages})


def _best_heading(count: int) -> str:
    if not count:
        return "<h2>The best graphs</h2><p class='note'>No complete trial yet: no graph.</p>"
    return f"<h2>The best {count} graph{'' if count == 1 else 's'}</h2>"


def _counts(data: SearchData) -> str:
    counts: dict[str, int] = {}
    for t in data.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _objective(data: SearchData) -> str:
    xs = [t.number for t in data.trials]
    done = [t.value if t.state == "complete" else None for t in data.trials]
    pruned = [t.value if t.state == "pruned" else None for t in data.trials]
    pick = max if data.direction == "maximize" else min
    so_far: list[float | None] = []
    for v in done:
        prev = so_far[-1] if so_far else None
        so_far.append(v if prev is None else (prev if v is None else pick(prev, v)))
    series = [
        Series("complete", done, points=True),
        Series("pruned (last value reported)", pruned, points=True),
        Series("best so far", so_far),
    ]
    svg = chart(data.metric, xs, series, xlabel="trial", cls="chart wide", width=760)
    return svg + legend([(s.label, False) for s in series])


def _best_graphs(best: list[Trial]) -> tuple[list[str], list[dict[str, Any]], dict[str, str]]:
    """Each best trial's graph (styled by its run's last epoch when the run is there), and
    its run's own page (opened in the page's frame)."""
    from ..check import check_data

    figures, graphs, pages = [], [], {}
    for i, t in enumerate(best):
        try:
            recorded = yaml.safe_load(t.spec_text or "")
        except yaml.YAMLError:
            recorded = None
        report = check_data(recorded) if isinstance(recorded, dict) else None
        if report is None or report.spec is None or report.graph is None:
            figures.append(
                f"<figure><figcaption>#{i + 1}: trial {t.number} · {number(t.value, 4)} "
                "<span class='note'>(the spec its trial recorded cannot be read: no graph)"
                "</span></figcaption></figure>"
            )
            continue
        prefix = f"t{t.number}-"
        svg = graph_svg(report.spec, report.graph, prefix)
        note, button = "its spec's gates (its run folder is gone)", ""
        try:
            run, run_spec, run_graph = load_run(Path(t.run_dir or ""))
            graphs.append({"prefix": prefix, "run": run.as_json()})
            pages[f"trial{t.number}"] = run_document(run, graph_svg(run_spec, run_graph))
            note = "edges at its last epoch"
            button = (
                f' <button class="open-run" type="button" data-page="trial{t.number}" '
                f'data-title="trial {t.number}">open its run</button>'
            )
        except KtgRuntimeError as exc:
            if t.run_dir and Path(t.run_dir).is_dir():  # there, but damaged: say so
                note = f"its spec's gates; its run cannot be read: {exc}"
        figures.append(
            f"<figure><figcaption>#{i + 1}: trial {t.number} · {number(t.value, 4)} "
            f"<span class='note'>({note})</span>{button}</figcaption>{svg}</figure>"
        )
    return figures, graphs, pages


def _choices(data: SearchData) -> str:
    choices, rows = choice_summary(data)
    if not rows:
        return "<p class='note'>No complete trial made a gate or model choice yet.</p>"
    pick = max if data.direction == "maximize" else min
    out, keys = [], []
    for row in rows:
        means = {c: row.mean(c) for c in choices}
        known = [m for m in means.values() if m is not None]
        top = pick(known) if known else None
        cells: list[Any] = [row.param.replace("gate:", "edge ").replace("model:", "node ")]
        for c in choices:
            m, n = means[c], len(row.by_choice.get(c, []))
            if m is None:
                cells.append("")
                continue
            cls = " class='good'" if m == top and len(known) > 1 else ""
            cells.append(Markup(f"<span{cls}>{m:.3f}</span> <small>(n={n})</small>"))
        out.append(cells)
        keys.append([row.param, *[means[c] for c in choices]])
    note = (
        "<p class='note'>Mean objective of the complete trials that chose each gate (rows "
        "<code>edge receiver&lt;-sender</code>) or model; the best mean of a row is marked. "
        "Few trials per cell: a hint, not a test.</p>"
    )
    return note + table(["choice", *choices], out, cls="sortable", ident="choices", sort_keys=keys)


def _trials(data: SearchData, out: Path | None) -> str:
    params = sorted({p for t in data.trials for p in t.params})
    base = (out.parent if out is not None else Path.cwd()).resolve()
    rows, keys = [], []
    for t in data.trials:
        folder: Any = ""
        if t.run_dir and Path(t.run_dir).is_dir():
            rel = os.path.relpath(Path(t.run_dir).resolve(), base)
            folder = Markup(f'<a href="{esc(href(rel))}">{esc(Path(t.run_dir).name)}</a>')
        values = [_short(t.params.get(p)) for p in params]
        state = f"{t.state}: {t.reason}" if t.reason and t.state == "fail" else t.state
        rows.append([t.number, state, number(t.value, 4), number(t.seconds, 1), *values, folder])
        keys.append([t.number, state, t.value, t.seconds, *values, t.run_dir])
    head = ["trial", "state", data.metric, "time (s)", *params, "run folder"]
    return table(head, rows, cls="sortable", ident="trials", sort_keys=keys)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
