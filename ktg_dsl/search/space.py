"""The search space of a spec's ``search:`` section, and the concrete spec of a sample.

* every edge of the N x N matrix (the diagonal is the labels edge) takes a gate from
  ``search.gates``, unless ``search.edges`` gives that edge its own choices or fixes it to the
  gate the spec writes;
* an edge whose ``search.edges`` entry lists ``losses`` also takes one of those losses;
* feature edges (between taps) are kept as the spec writes them;
* each node listed in ``search.models`` takes one of its model choices (others keep theirs);
* each ``search.params`` entry is a number set at a key path of the spec.
"""

from __future__ import annotations

from typing import Any

from ..check import CheckReport, check_data
from ..errors import KtgRuntimeError
from ..graph import Edge, spec_edges
from ..spec.overrides import parse_path, set_path, spec_default
from ..spec.schema import LABELS, GateRef, Spec


class SearchSpace:
    def __init__(self, spec: Spec) -> None:
        if spec.search is None:
            raise KtgRuntimeError(f"{spec.name}: the spec has no 'search:' section to search")
        self.spec = spec
        self.search = spec.search
        self.names = spec.node_names
        written, _ = spec_edges(spec)
        self.written = {(e.receiver, e.sender): e for e in written if not _tapped(e)}
        self.features = [e for e in written if _tapped(e)]  # kept as written
        overrides = {(c.to, c.from_): c for c in self.search.edges}
        self.losses = {k: list(c.losses) for k, c in overrides.items() if c.losses}
        self.edges: list[tuple[str, str, list[GateRef] | None]] = []  # None: fixed
        for receiver in self.names:
            if spec.nodes[receiver].frozen:
                continue  # a declared teacher never learns: its edges stay as written
            for sender in [LABELS, *[n for n in self.names if n != receiver]]:
                choice = overrides.get((receiver, sender))
                if choice is not None and choice.fixed:
                    self.edges.append((receiver, sender, None))
                elif choice is not None and choice.gates:
                    self.edges.append((receiver, sender, list(choice.gates)))
                else:
                    self.edges.append((receiver, sender, list(self.search.gates)))

    @staticmethod
    def edge_key(receiver: str, sender: str) -> str:
        return f"gate:{receiver}<-{sender}"

    @staticmethod
    def loss_key(receiver: str, sender: str) -> str:
        return f"loss:{receiver}<-{sender}"

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Sample one graph: {param name: choice}. Choices are strings (Optuna stores them)."""
        sampled: dict[str, Any] = {}
        for receiver, sender, choices in self.edges:
            if choices is None:
                continue
            key = self.edge_key(receiver, sender)
            sampled[key] = trial.suggest_categorical(key, [str(g) for g in choices])
        for (receiver, sender), losses in self.losses.items():
            key = self.loss_key(receiver, sender)
            sampled[key] = trial.suggest_categorical(key, [str(loss) for loss in losses])
        for node, models in sorted(self.search.models.items()):
            key = f"model:{node}"
            sampled[key] = trial.suggest_categorical(key, [str(m) for m in models])
        for p in self.search.params:
            key = f"param:{p.path}"
            if p.integer:
                sampled[key] = trial.suggest_int(
                    key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
                )
            else:
                sampled[key] = trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)
        return sampled

    def concrete(self, sampled: dict[str, Any], note: str = "") -> dict[str, Any]:
        """The plain spec data of a sampled graph (no search section)."""
        base = self.spec
        data = dict(base.raw)
        data.pop("search", None)
        data.pop("gate_matrix", None)
        data.pop("edges", None)
        gates: dict[tuple[str, str], Any] = {}
        for receiver, sender, choices in self.edges:
            if choices is None:
                written = self.written.get((receiver, sender))
                gates[(receiver, sender)] = written.gate if written else GateRef(type="cutoff")
            else:
                by_text = {str(g): g for g in choices}
                gates[(receiver, sender)] = by_text[sampled[self.edge_key(receiver, sender)]]
        for (receiver, sender), e in self.written.items():  # edges into declared teachers
            gates.setdefault((receiver, sender), e.gate)
        edges = []
        for receiver in self.names:
            for sender in [LABELS, *self.names]:
                gate = gates.get((receiver, sender))
                if gate is None or gate.type == "cutoff":
                    continue  # an edge not written is cut off
                edges.append(self._edge(receiver, sender, gate, sampled))
        data["edges"] = edges + [self._raw_edge(e.path) for e in self.features]
        nodes = {k: dict(v) for k, v in data["nodes"].items()}
        for node, models in self.search.models.items():
            model_by_text = {str(m): m for m in models}
            nodes[node]["model"] = model_by_text[sampled[f"model:{node}"]].model_dump()
        data["nodes"] = nodes
        for p in self.search.params:
            data = set_path(data, parse_path(p.path), sampled[f"param:{p.path}"], spec_default)
        if note:
            data["description"] = note
        return data

    def _edge(self, receiver: str, sender: str, gate: GateRef, sampled: dict[str, Any]) -> Any:
        edge: dict[str, Any] = {"to": receiver, "from": sender, "gate": gate.model_dump()}
        choices = self.losses.get((receiver, sender))
        if choices:
            by_text = {str(loss): loss for loss in choices}
            edge["loss"] = by_text[sampled[self.loss_key(receiver, sender)]].model_dump()
            return edge
        written = self.written.get((receiver, sender))
        raw_loss = self._written_loss(written.path) if written else None
        if raw_loss is not None:
            edge["loss"] = raw_loss
        return edge

    def _raw_edge(self, path: tuple[Any, ...]) -> Any:
        """An edge of the base spec's edge list, as written."""
        return (self.spec.raw.get("edges") or [])[path[1]]

    def _written_loss(self, path: tuple[Any, ...]) -> Any:
        """The loss written on an edge of the base spec's edge list, if any."""
        if path and path[0] == "edges":
            edge = (self.spec.raw.get("edges") or [])[path[1]]
            if isinstance(edge, dict):
                return edge.get("loss")
        return None


def _tapped(e: Edge) -> bool:
    return e.receiver_tap is not None or e.sender_tap is not None


def check_sampled(data: dict[str, Any]) -> CheckReport:
    """Every check of a sampled spec's data."""
    return check_data(data)


def error_lines(report: CheckReport) -> list[str]:
    """A report's errors as ``key.path: message (hint)`` lines (no file: a sample has none)."""
    from ..errors import format_path

    return [
        f"{format_path(i.path)}: {i.message}" + (f" ({i.hint})" if i.hint else "")
        for i in report.errors
    ]
