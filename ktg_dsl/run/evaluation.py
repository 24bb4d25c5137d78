"""``ktg eval``: a trained run's nodes measured on a split, from their saved weights (best or
last), without training: top-1, top-5, per-class accuracy and the confusion matrix. A
self-supervised run's nodes are scored by kNN on their encoder's features against the training
part (its spec's ``self_supervised.knn``), as its training evaluated them.

The run's own resolved spec says what the data and the models are; only ``data.split`` may
differ (``test``: the held-out test set, whatever split the run chose its best epoch on).
Evaluation runs in fp32, so the numbers can differ in the last digits from the val_top1 an
AMP run logged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..components.data.loader import eval_batches
from ..engine.program import Program, RuntimeNode
from ..errors import KtgRuntimeError, did_you_mean
from ..graph import GraphReport
from ..spec.schema import Spec
from . import checkpoint as ckpt
from .data import eval_label, load_bundle, program_for
from .rundir import RunDir

CHECKPOINTS = ("best", "last")


@dataclass
class NodeScores:
    """One node's scores on a split (accuracies in %, epochs from 1)."""

    node: str
    checkpoint: str
    epoch: int | None
    split: str
    samples: int
    top1: float
    top5: float
    classes: list[str]
    per_class: dict[str, float | None]  # None: no sample of that class in the split
    confusion: list[list[int]]  # rows: true class, columns: predicted class

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_run(
    path: Path,
    spec: Spec,
    graph: GraphReport,
    nodes: list[str] | None = None,
    checkpoint: str = "best",
) -> list[NodeScores]:
    """Every trained node of the run at ``path`` (or ``nodes``) from its ``checkpoint``
    (best/<node>.pt, or last.pt), on the evaluation split of ``spec``."""
    unknown = [n for n in nodes or () if n not in spec.nodes]
    if unknown:  # before the data is loaded (a large dataset takes a while)
        close = did_you_mean(unknown[0], spec.nodes)
        raise KtgRuntimeError(
            f"the run has no node {unknown[0]!r}{f' ({close})' if close else ''}; its nodes: "
            f"{', '.join(spec.nodes)}"
        )
    bundle = load_bundle(spec)
    program = program_for(spec, graph, bundle)
    # a node named twice is measured once
    chosen = list(dict.fromkeys(nodes)) if nodes else [n.name for n in program.trainable()]
    size = spec.data.eval_batch_size or 4 * spec.data.batch_size

    def in_order(part: Any) -> Any:
        return eval_batches(part, size, mean=bundle.mean, std=bundle.std, device=program.device)

    batches = in_order(bundle.eval)
    # kNN against the training part, as in training
    bank = None if spec.self_supervised is None else in_order(bundle.train)
    names = bundle.class_names or [str(i) for i in range(bundle.num_classes)]
    split = eval_label(spec, bundle.eval_name)
    out = []
    for name in chosen:
        node = program.nodes[name]
        epoch = _load(RunDir(path), program, node, checkpoint)
        if bank is None:
            matrix = confusion(node.model, batches, bundle.num_classes, node.device)
        else:
            matrix = knn_confusion(node, bank, batches, bundle.num_classes, spec)
        out.append(scores(name, checkpoint, epoch, split, names, *matrix))
    return out


@torch.no_grad()
def encoder_features(node: RuntimeNode, batches: Any) -> tuple[Tensor, Tensor]:
    """A self-supervised node's representation ``[N, d]`` (float32: its encoder's output,
    what kNN reads in training) over ``batches``, and their labels ``[N]``."""
    assert node.features is not None
    encoder = node.model.get_submodule(node.features)
    node.model.eval()
    feats, labels = [], []
    for x, y in batches:
        feats.append(encoder(x.to(node.device)).flatten(1).float())
        labels.append(y.to(node.device))
    if not feats:
        raise KtgRuntimeError(f"node '{node.name}': no batch to compute features on")
    return torch.cat(feats), torch.cat(labels)


def knn_confusion(
    node: RuntimeNode, bank: Any, query: Any, classes: int, spec: Spec
) -> tuple[Tensor, Tensor]:
    """:func:`confusion` for a self-supervised node: each query classified by its nearest
    neighbours in the bank (the spec's ``self_supervised.knn``); top-5 by their votes."""
    from ..engine.knn import knn_votes

    assert spec.self_supervised is not None
    knn = spec.self_supervised.knn
    bank_x, bank_y = encoder_features(node, bank)
    query_x, query_y = encoder_features(node, query)
    if knn.k > len(bank_y):
        raise KtgRuntimeError(
            f"kNN with k = {knn.k} needs a memory bank of at least k samples; the training "
            f"part has {len(bank_y)}"
        )
    votes = knn_votes(
        bank_x, bank_y, query_x,
        num_classes=classes, k=knn.k, weighted=knn.weighted, temperature=knn.temperature,
    )  # fmt: skip
    return vote_confusion(votes, query_y)


def vote_confusion(votes: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The confusion matrix and top-5 hits of kNN votes ``[M, C]`` for true ``labels``: the
    prediction is the most voted class (ties: the lowest index, as ``knn_predict``); a top-5
    hit is the true class among the five most voted, and voted for at all (with k < 5 fewer
    than five classes have votes: the unvoted rank nowhere)."""
    classes = votes.shape[1]
    pred = votes.argmax(1)
    matrix = torch.bincount(labels * classes + pred, minlength=classes * classes)
    voted = votes.gather(1, labels[:, None]).squeeze(1) > 0
    ranked = (votes.topk(min(5, classes), dim=1).indices == labels[:, None]).any(1)
    return matrix.view(classes, classes).cpu(), (ranked & voted).sum().cpu()


def _load(run: RunDir, program: Program, node: RuntimeNode, checkpoint: str) -> int | None:
    """Load the node's weights; the epoch (from 1) they are of, when the file says."""
    if node.frozen:  # a teacher: its weights are its spec's checkpoint, whatever was asked
        if node.config.checkpoint:
            ckpt.load_node_weights(node, Path(node.config.checkpoint))
            return None
        raise KtgRuntimeError(f"node '{node.name}' is frozen and names no checkpoint")
    file = run.best(node.name) if checkpoint == "best" else run.last
    if not file.exists():
        what = "has no best weights yet (no evaluation ran)" if checkpoint == "best" else ""
        what = what or "has no last.pt"
        raise KtgRuntimeError(f"the run {run.path} {what}: {file} does not exist")
    obj = ckpt.load(file, f"checkpoint of node '{node.name}'")
    _check_kind(obj, file, node.name, checkpoint)
    state = ckpt.extract_state(obj, node.name, file)
    problems = ckpt.fit_problems(node.model.state_dict(), state)
    if problems:
        raise KtgRuntimeError(f"{file} does not fit node '{node.name}': " + "; ".join(problems))
    node.model.load_state_dict(state)
    # best/<node>.pt records its epoch from 0; last.pt the epochs finished before it
    epoch = obj.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        return None
    return epoch + 1 if checkpoint == "best" else epoch


def _check_kind(obj: dict[str, Any], file: Path, node: str, checkpoint: str) -> None:
    """Refuse a file of the wrong kind in a run's place: a node file as last.pt (every node
    would get that one node's weights), a run file or another node's file as best/<node>.pt."""
    fmt, owner = obj.get("format"), obj.get("node")
    if checkpoint == "last" and fmt == ckpt.NODE_FORMAT:
        raise KtgRuntimeError(
            f"{file} is the node file of node '{owner}', not a run's last.pt (a run checkpoint "
            "of every node); evaluate the best weights (--checkpoint best) or put the run's "
            "own last.pt back"
        )
    if checkpoint == "best" and fmt == ckpt.RUN_FORMAT:
        raise KtgRuntimeError(
            f"{file} is a run checkpoint (a last.pt), not the node file of node '{node}' that "
            "ktg train writes as best/<node>.pt; evaluate --checkpoint last instead"
        )
    if checkpoint == "best" and fmt == ckpt.NODE_FORMAT and owner not in (None, node):
        raise KtgRuntimeError(
            f"{file} holds the weights of node '{owner}', not of node '{node}' (a node file "
            f"copied or renamed); put back the file that ktg train wrote for '{node}'"
        )


@torch.no_grad()
def confusion(
    model: nn.Module, batches: Any, classes: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """The confusion matrix ``[C, C]`` (rows true, columns predicted) and the top-5 hits."""
    model.eval()
    matrix = torch.zeros(classes * classes, dtype=torch.long, device=device)
    top5 = torch.zeros((), dtype=torch.long, device=device)
    k = min(5, classes)
    for x, y in batches:
        x, y = x.to(device), y.to(device)  # a node on its own device (nodes.<name>.device)
        z = model(x).float()
        matrix += torch.bincount(y * classes + z.argmax(-1), minlength=classes * classes)
        top5 += (z.topk(k, dim=-1).indices == y[:, None]).any(-1).sum()
    return matrix.view(classes, classes).cpu(), top5.cpu()


def scores(
    node: str,
    checkpoint: str,
    epoch: int | None,
    split: str,
    names: list[str],
    matrix: Tensor,
    top5: Tensor,
) -> NodeScores:
    rows = matrix.sum(1).tolist()
    total = max(int(matrix.sum()), 1)
    diagonal = matrix.diagonal().tolist()
    return NodeScores(
        node=node,
        checkpoint=checkpoint,
        epoch=epoch,
        split=split,
        samples=int(matrix.sum()),
        top1=100.0 * sum(diagonal) / total,
        top5=100.0 * int(top5) / total,
        classes=names,
        per_class={
            name: (100.0 * hit / seen if seen else None)
            for name, hit, seen in zip(names, diagonal, rows, strict=True)
        },
        confusion=matrix.tolist(),
    )
