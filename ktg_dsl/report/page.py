"""The HTML shell every page shares: one file, its style sheet, its script and its data inline
(``assets/``: package data), nothing fetched. Helpers for the tables every page has."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from importlib import resources
from typing import Any

from .. import __version__

DATA_ID = "ktg-data"


def asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """JSON safe inside <script>: no ``</`` can end the element early, no ``<!--`` opens a
    comment (a spec's text or a node's name may hold either)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=_plain)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plain(value: Any) -> Any:
    if isinstance(value, float):  # NaN or an infinity: JSON has neither
        return None
    return str(value)


def clean(value: Any) -> Any:
    """Non-finite numbers as None (JSON and the page's script have no NaN)."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def document(title: str, kind: str, body: str, data: Any) -> str:
    """A whole page: ``kind`` (run, study, search) tells the script what to wire up."""
    payload = script_json(clean({"kind": kind, **data}))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="ktg {html.escape(__version__)}">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>\n{asset('report.css')}</style>\n</head>\n"
        f'<body class="{kind}">\n{body}\n'
        f'<script type="application/json" id="{DATA_ID}">{payload}</script>\n'
        f"<script>\n{asset('report.js')}</script>\n</body>\n</html>\n"
    )


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def href(folder: str) -> str:
    """A relative link to a folder: each part percent-encoded (a '#', '?' or '%' in a folder's
    name is a character of the name, not the address's fragment, query or escape)."""
    from urllib.parse import quote

    return "/".join(quote(part) for part in folder.split(os.sep)) + "/"


def number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return esc(value)


def table(
    head: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    cls: str = "",
    ident: str = "",
    sort_keys: Sequence[Sequence[Any]] | None = None,
) -> str:
    """An HTML table; cells are escaped text (pass ``Markup`` for HTML). ``sort_keys``: the
    value each cell sorts by (a ``sortable`` table sorts on a click on its heading)."""
    attrs = (f' class="{cls}"' if cls else "") + (f' id="{ident}"' if ident else "")
    out = [f"<table{attrs}>", "<thead><tr>"]
    out += [f"<th>{esc(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            key = sort_keys[i][j] if sort_keys is not None else None
            data = f' data-sort="{esc(key)}"' if key is not None else ""
            text = cell.html if isinstance(cell, Markup) else esc(cell)
            cells.append(f"<td{data}>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


class Markup:
    """HTML written here, not text to escape."""

    def __init__(self, html_text: str) -> None:
        self.html = html_text


def details(summary: str, content: str, open_: bool = False) -> str:
    opened = " open" if open_ else ""
    return f"<details{opened}><summary>{esc(summary)}</summary>\n{content}\n</details>"


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"
