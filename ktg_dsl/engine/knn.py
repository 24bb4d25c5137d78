"""Evaluating a representation without training a head on the task: k-nearest-neighbour
classification against a memory bank (the training part's features), and a linear probe on
frozen features. docs/losses.md ("Self-supervised evaluation") has the formulas.

- Unweighted kNN (``weighted=False``) is the original KnowledgeTransferGraph repository's
  (``ktg/utils/eval.py``, ``KNNValidation``): scikit-learn's ``KNeighborsClassifier`` with its
  defaults, i.e. Euclidean distance on the features as they are (not normalised), the k nearest
  each giving one vote. Ties between classes go to the lowest class index, as scikit-learn's.
- Weighted kNN (``weighted=True``) is the author's newer repository's (after DINO and
  InstDisc): L2-normalised features, cosine similarity, each of the k most similar giving a
  vote of ``exp(sim / T)``.

The bank is compared with ``chunk`` queries at a time: memory ``chunk x N`` scores, never
``M x N``. It runs on the bank's device and in its dtype; the queries are moved there one
chunk at a time.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["knn_predict", "knn_top1", "knn_votes", "linear_probe", "linear_probe_top1"]


def _check(
    bank: Tensor,
    bank_labels: Tensor,
    query: Tensor,
    num_classes: int,
    k: int,
    temperature: float,
    chunk: int,
) -> None:
    if bank.ndim != 2 or query.ndim != 2 or bank.shape[1] != query.shape[1]:
        raise ValueError(
            f"kNN compares feature vectors: the bank is {tuple(bank.shape)} and the queries "
            f"{tuple(query.shape)}; both must be [count, D] with the same D"
        )
    if bank_labels.shape != (bank.shape[0],):
        raise ValueError(
            f"the bank has {bank.shape[0]} features but {tuple(bank_labels.shape)} labels"
        )
    if not 1 <= k <= bank.shape[0]:
        raise ValueError(f"k = {k} neighbours, but the bank holds {bank.shape[0]} features")
    if len(bank_labels) and not 0 <= int(bank_labels.min()) <= int(bank_labels.max()) < num_classes:
        raise ValueError(f"the bank's labels must lie in [0, {num_classes})")
    if not (temperature > 0 and chunk >= 1):
        raise ValueError(f"kNN needs temperature > 0 and chunk >= 1; got {temperature}, {chunk}")


@torch.no_grad()
def knn_predict(bank: Tensor, bank_labels: Tensor, query: Tensor, **options: Any) -> Tensor:
    """The predicted class ``[M]`` of each query ``[M, D]`` by its ``k`` nearest neighbours in
    ``bank`` ``[N, D]`` (labels ``[N]``, long); ``options`` (``num_classes``, ``k``,
    ``weighted``, ``temperature``, ``chunk``) as :func:`knn_votes`. Unweighted: Euclidean
    distance, one vote each; weighted: cosine similarity of the L2-normalised features, votes
    ``exp(sim / T)``. Ties between classes: the lowest class index."""
    votes = knn_votes(bank, bank_labels, query, **options)
    return votes.argmax(1)  # the first maximum: the lowest class index


@torch.no_grad()
def knn_votes(
    bank: Tensor,
    bank_labels: Tensor,
    query: Tensor,
    *,
    num_classes: int,
    k: int = 20,
    weighted: bool = False,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> Tensor:
    """Each query's votes per class ``[M, C]`` from its ``k`` nearest neighbours (see
    :func:`knn_predict`; weighted votes are scaled per query so that the largest is 1). Their
    argmax is the prediction; their order ranks the classes (top-5)."""
    _check(bank, bank_labels, query, num_classes, k, temperature, chunk)
    if weighted:
        bank = F.normalize(bank, dim=1)
    # ||q - b||^2 = ||q||^2 - 2 (q.b - ||b||^2 / 2): the closest have the largest q.b - ||b||^2/2
    half_sq = 0.5 * bank.pow(2).sum(1)
    labels = bank_labels.long().to(bank.device)
    out = []
    for start in range(0, query.shape[0], chunk):
        # the queries may wait elsewhere (on the CPU): one chunk at a time goes to the bank
        q = query[start : start + chunk].to(bank.device, bank.dtype)
        if weighted:
            sim, idx = (F.normalize(q, dim=1) @ bank.t()).topk(k, dim=1)
            # exp(sim / T) up to a factor per query (the argmax is the same): the largest vote
            # is 1, so no overflow at small T
            votes = ((sim - sim[:, :1]) / temperature).exp()
        else:
            idx = (q @ bank.t() - half_sq).topk(k, dim=1).indices  # the k closest
            votes = torch.ones(idx.shape, dtype=bank.dtype, device=bank.device)
        counts = torch.zeros(len(q), num_classes, dtype=votes.dtype, device=votes.device)
        counts.scatter_add_(1, labels[idx], votes)
        out.append(counts)
    if not out:
        return torch.empty(0, num_classes, dtype=bank.dtype, device=bank.device)
    return torch.cat(out)


def _percent(pred: Tensor, labels: Tensor) -> float:
    if len(labels) == 0:
        raise ValueError("no query features to score")
    return 100.0 * float((pred == labels.to(pred.device)).sum()) / len(labels)


def knn_top1(
    bank: Tensor, bank_labels: Tensor, query: Tensor, query_labels: Tensor, **options: Any
) -> float:
    """kNN top-1 accuracy of the queries, in percent (``options`` as :func:`knn_votes`)."""
    return _percent(knn_predict(bank, bank_labels, query, **options), query_labels)


def linear_probe(
    feats: Tensor, labels: Tensor, *, num_classes: int, epochs: int = 100, l2: float = 1e-4
) -> tuple[Tensor, Tensor, Tensor]:
    """Multinomial logistic regression on frozen features: ``(mean, scale, layer)`` where
    ``layer`` is ``[C, D + 1]`` (weights, then the bias) applied to ``(x - mean) / scale``.

    Features are standardised with the training part's mean and standard deviation; the
    objective is the mean cross-entropy plus ``l2 / 2 * ||W||^2`` (the bias not penalised),
    scikit-learn's ``LogisticRegression`` with ``C = 1 / (l2 * N)``. Minimised by full-batch
    L-BFGS with a strong-Wolfe line search from zero weights, for at most ``epochs`` iterations
    (each a pass over the features, a few more in the line search): deterministic, no seed."""
    x = feats if feats.dtype == torch.float64 else feats.float()
    mean = x.mean(0)
    scale = x.std(0, unbiased=False).clamp_min(1e-6)
    x = (x - mean) / scale
    y = labels.long().to(x.device)
    layer = torch.zeros(num_classes, x.shape[1] + 1, dtype=x.dtype, device=x.device)
    layer.requires_grad_()
    opt = torch.optim.LBFGS(
        [layer], max_iter=epochs, tolerance_grad=1e-9, tolerance_change=1e-12,
        history_size=20, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> Tensor:
        opt.zero_grad()
        w, b = layer[:, :-1], layer[:, -1]
        loss = F.cross_entropy(x @ w.t() + b, y) + 0.5 * l2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return mean, scale, layer.detach()


def linear_probe_top1(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    *,
    num_classes: int,
    epochs: int = 100,
    l2: float = 1e-4,
) -> float:
    """Top-1 accuracy (percent) on the test features of a :func:`linear_probe` fitted on the
    training features."""
    mean, scale, layer = linear_probe(
        train_feats, train_labels, num_classes=num_classes, epochs=epochs, l2=l2
    )
    x = (test_feats.to(layer.dtype) - mean) / scale
    pred = (x @ layer[:, :-1].t() + layer[:, -1]).argmax(1)
    return _percent(pred, test_labels)
