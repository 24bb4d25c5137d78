"""A run directory written as ``ktg train`` writes one (spec.resolved.yaml, run.json,
metrics.jsonl in its real format, per-edge ``edges`` included), without training: the report
tests read it in milliseconds. The numbers are chosen so that edges change between epochs:
the b -> a edge's gate opens (weight 0, 0.5, 1) and its share of a's loss grows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import base_spec

SPEC = base_spec(
    name="tiny-report",
    edges=[
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "a", "from": "b", "gate": "positive_linear"},
        {"to": "b", "from": "a"},
    ],
)
WEIGHT_BA = [0.0, 0.5, 1.0]  # the b -> a edge's gate weight per epoch
LOSS_BA = [0.0, 0.8, 2.0]


def metrics_rows() -> list[dict[str, Any]]:
    rows = []
    for e in range(3):
        ce_a, ce_b, kl_ab = 1.5 / (e + 1), 1.4 / (e + 1), 0.1 * (e + 1)
        term_ba = WEIGHT_BA[e] * LOSS_BA[e]
        edges_a = {"labels": {"loss": ce_a, "weight": 1.0, "term": ce_a}}
        if WEIGHT_BA[e]:  # a row names the edges open at some step of the epoch
            edges_a["b"] = {"loss": LOSS_BA[e], "weight": WEIGHT_BA[e], "term": term_ba}
        edges_b = {
            "labels": {"loss": ce_b, "weight": 1.0, "term": ce_b},
            "a": {"loss": kl_ab, "weight": 1.0, "term": kl_ab},
        }
        for node, edges, top1 in (("a", edges_a, 60.0 + 10 * e), ("b", edges_b, 55.0 + 12 * e)):
            terms = sum(v["term"] for v in edges.values())
            rows.append(
                {
                    "epoch": e,
                    "node": node,
                    "train_loss": terms,
                    "train_top1": top1 - 5,
                    "val_top1": top1,
                    "val_loss": 1.0 / (e + 1),
                    "lr": 0.05,
                    "frozen": False,
                    "gates": {k: v["weight"] for k, v in edges.items()},
                    "edges": edges,
                    "epoch_time": 1.25,
                    "elapsed": 1.25 * (e + 1),
                }
            )
    return rows


def fake_run(folder: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    """The run directory ``folder`` (made), with the rows given or ``metrics_rows()``."""
    folder.mkdir(parents=True)
    (folder / "spec.resolved.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
    info = {"spec": "tiny-report", "device": "cpu", "precision": "fp32", "threads": 1,
            "torch": "2.x", "python": "3.11"}  # fmt: skip
    (folder / "run.json").write_text(json.dumps(info))
    rows = metrics_rows() if rows is None else rows
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def page_data(html_text: str) -> dict[str, Any]:
    """The JSON a page embeds for its script."""
    start = html_text.index('<script type="application/json" id="ktg-data">')
    start = html_text.index(">", start) + 1
    end = html_text.index("</script>", start)
    data: dict[str, Any] = json.loads(html_text[start:end])
    return data
