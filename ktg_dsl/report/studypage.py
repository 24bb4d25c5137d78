"""A study's page: each spec's graph (styled by its first run's last epoch), the results per
spec and node, the paired comparisons with the baseline, the study's pictures, and every
finished run: linked (a relative path to its folder) and embedded (its own run page, opened in
a frame; the first ``EMBED_RUNS`` runs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..bounded import ReadRefused, read_text_capped
from ..errors import KtgRuntimeError
from .page import Markup, details, document, esc, href, number, table
from .rundata import NotAReport, load_run
from .runpage import run_document
from .svg import graph_svg, safe_svg

EMBED_RUNS = 40  # a run page is ~50 kB: the page stays a few MB
PICTURES = ("curves.svg", "final.svg")
PICTURE_LIMIT = 8 * 1024 * 1024


def study_page(path: Path, out: Path | None = None) -> str:
    """The page of a study directory; ``out``: where it is written (run links are relative
    to it)."""
    from ..study.manifest import NotAStudy, StudyDir
    from ..study.results import collect

    study = StudyDir(path)
    try:
        manifest = study.read()
    except NotAStudy as exc:
        raise NotAReport(str(exc)) from None
    res = collect(study, manifest, manifest.baseline, manifest.node)
    if not res.runs:
        raise NotAReport(f"{path}: the study has no finished run yet: nothing to show")
    runs: list[tuple[Any, str]] = []
    pages: dict[str, str] = {}
    graphs: list[dict[str, Any]] = []
    svgs: list[tuple[str, str, str]] = []
    for i, record in enumerate(res.runs):
        run_path = study.run_path(record.key)
        try:
            data, spec, graph = load_run(run_path)
        except KtgRuntimeError as exc:  # one unreadable run does not hide the others
            runs.append((record, str(exc)))
            continue
        runs.append((record, ""))
        if i < EMBED_RUNS:
            pages[f"run{i}"] = run_document(data, graph_svg(spec, graph))
        if record.spec not in [g["spec"] for g in graphs]:
            prefix = f"s{len(graphs)}-"
            graphs.append({"spec": record.spec, "prefix": prefix, "run": data.as_json()})
            svgs.append((record.spec, record.key, graph_svg(spec, graph, prefix)))
    body = [
        f"<header><h1>Study {esc(res.name)}</h1><p class='sub'>{esc(path)} · "
        f"{len(manifest.specs)} specs × seeds {esc(', '.join(map(str, res.seeds)))} · "
        f"{res.split} top-1 (%)</p></header>",
        "<h2>Graphs</h2>",
        _graphs(svgs),
        "<h2>Results per spec and node</h2>",
        _summaries(res),
        _comparisons(res),
        _pictures(path),
        "<h2>Runs</h2>",
        _runs(runs, path, out, pages),
        '<h3 id="run-frame-title"></h3><iframe id="run-frame" title="run page"></iframe>',
    ]
    if res.missing:
        body.insert(-3, f"<p class='note'>Not finished: {esc(', '.join(res.missing))}</p>")
    page = {"graphs": graphs, "pages": pages}
    return document(f"study {res.name}: ktg report", "study", "\n".join(body), page)


def _graphs(svgs: list[tuple[str, str, str]]) -> str:
    figures = [
        f"<figure><figcaption>{esc(spec)} <span class='note'>(edges at the last epoch of "
        f"{esc(key)})</span></figcaption>{svg}</figure>"
        for spec, key, svg in svgs
    ]
    return '<div class="side-by-side">' + "".join(figures) + "</div>"


def _spread(s: Any) -> str:
    if s is None:
        return "–"
    return f"{s.mean:.2f}" + (f" ± {s.std:.2f}" if s.std is not None else "")


def _summaries(res: Any) -> str:
    rows, keys = [], []
    for s in res.summaries:
        best_min = f"{s.best.min:.2f} / {s.best.max:.2f}" if s.best else "–"
        rows.append(
            [s.spec, s.node + (" (frozen)" if s.frozen else ""), len(s.seeds), _spread(s.best),
             best_min, number(s.best_epoch, 1), _spread(s.last), number(s.seconds, 1)]
        )  # fmt: skip
        mean = [None if x is None else x.mean for x in (s.best, s.last)]
        keys.append([s.spec, s.node, len(s.seeds), mean[0], None, s.best_epoch, mean[1], s.seconds])
    head = ["spec", "node", "n", "best", "min / max", "best epoch", "last", "time (s)"]
    return table(head, rows, cls="sortable", ident="results", sort_keys=keys)


def _comparisons(res: Any) -> str:
    if not res.comparisons:
        return ""
    rows = []
    for c in res.comparisons:
        p = c.stats
        ci = f"[{p.ci_low:+.2f}, {p.ci_high:+.2f}]" if p.ci_low is not None else "–"
        sign = "good" if p.ci_low is not None and p.ci_low > 0 else ""
        sign = "bad" if p.ci_high is not None and p.ci_high < 0 else sign
        diff = Markup(f"<span class='{sign}'>{p.mean_diff:+.2f}</span>")
        rows.append(
            [c.spec, c.node, c.metric, p.n, diff, ci, number(p.t), number(p.p_t, 3),
             number(p.p_wilcoxon, 3), p.note]
        )  # fmt: skip
    head = ["spec", "node", "metric", "n", "difference", "95% CI", "t", "p (t)", "p (W)", "note"]
    return (
        f"<h2>Against {esc(res.baseline)} (paired over seeds)</h2>"
        "<p class='note'>Differences in percentage points, seed by seed.</p>"
        + table(head, rows, cls="sortable", ident="comparisons")
    )


def _pictures(path: Path) -> str:
    out = []
    for name in PICTURES:
        file = path / name
        if not file.is_file():
            continue
        try:
            text = read_text_capped(file, PICTURE_LIMIT, f"the study's {name}")
            out.append(f"<figure>{safe_svg(text, name.split('.')[0] + '-')}</figure>")
        except (OSError, ReadRefused, KtgRuntimeError) as exc:
            print(f"ktg: warning: {file}: {exc}", file=sys.stderr)
            out.append(f"<p class='note'>{esc(name)}: {esc(exc)}</p>")
    if not out:
        return ""
    return "<h2>Pictures</h2><div class='pictures'>" + "".join(out) + "</div>"


def _runs(runs: list[tuple[Any, str]], path: Path, out: Path | None, pages: dict) -> str:
    base = (out.parent if out is not None else Path.cwd()).resolve()
    rows, keys = [], []
    for i, (record, problem) in enumerate(runs):
        folder = os.path.relpath((path / record.key).resolve(), base)
        link = Markup(f'<a href="{esc(href(folder))}">{esc(record.key)}</a>')
        nodes = ", ".join(f"{n} {number(r.best)}" for n, r in record.nodes.items() if not r.frozen)
        page = f"run{i}"
        open_: Markup | str = problem or "–"
        if page in pages:
            open_ = Markup(
                f'<button class="open-run" type="button" data-page="{page}" '
                f'data-title="{esc(record.key)}">open</button>'
            )
        rows.append([record.spec, record.seed, link, nodes, number(record.seconds, 1), open_])
        keys.append([record.spec, record.seed, record.key, None, record.seconds, None])
    head = ["spec", "seed", "run folder", "best top-1 per node", "time (s)", "run page"]
    return table(head, rows, cls="sortable", ident="runs", sort_keys=keys) + details(
        "How to make one run's page", "<pre>ktg report STUDY/&lt;run folder&gt; -o run.html</pre>"
    )
