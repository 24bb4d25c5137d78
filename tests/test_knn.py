"""kNN evaluation and the linear probe (ktg_dsl/engine/knn.py) against scikit-learn on the same
features: unweighted kNN against KNeighborsClassifier with the original's settings (Euclidean,
uniform votes), weighted kNN against KNeighborsClassifier with a cosine metric and an
exp(sim / T) weights callable and against a float64 loop, the probe against
LogisticRegression with the same objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from torch import Tensor

from ktg_dsl.engine.knn import (
    knn_predict,
    knn_top1,
    knn_votes,
    linear_probe,
    linear_probe_top1,
)

C = 5


def clusters(
    n: int, d: int, seed: int, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    """Overlapping Gaussian classes: neighbours of every class, many wrong votes."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (n,), generator=g)
    centres = torch.randn(C, d, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    x = centres[labels] + 1.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return x.to(dtype), labels


@pytest.mark.parametrize("k", [1, 5, 20])
def test_unweighted_knn_is_scikit_learns_euclidean_majority(k: int) -> None:
    bank, bank_y = clusters(300, 8, seed=1)
    query, query_y = clusters(120, 8, seed=2)
    mine = knn_predict(bank, bank_y, query, num_classes=C, k=k, chunk=37)  # uneven chunks
    sk = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(bank.numpy(), bank_y.numpy())
    assert np.array_equal(mine.numpy(), sk.predict(query.numpy()))
    acc = knn_top1(bank, bank_y, query, query_y, num_classes=C, k=k)
    assert acc == pytest.approx(100.0 * sk.score(query.numpy(), query_y.numpy()))
    assert 20.0 < acc < 100.0  # a real task: neither chance nor trivial


def test_unweighted_knn_in_float32_agrees_with_scikit_learn() -> None:
    bank, bank_y = clusters(400, 16, seed=3, dtype=torch.float32)
    query, _ = clusters(200, 16, seed=4, dtype=torch.float32)
    sk = KNeighborsClassifier(n_neighbors=20, algorithm="brute").fit(bank.numpy(), bank_y.numpy())
    mine = knn_predict(bank, bank_y, query, num_classes=C)
    assert np.array_equal(mine.numpy(), sk.predict(query.numpy()))


def test_unweighted_votes_are_scikit_learns_class_probabilities_times_k() -> None:
    """ktg eval's kNN top-5 ranks the classes by these votes."""
    bank, bank_y = clusters(300, 8, seed=5)
    query, _ = clusters(90, 8, seed=6)
    votes = knn_votes(bank, bank_y, query, num_classes=C, k=20, chunk=40)
    sk = KNeighborsClassifier(n_neighbors=20, algorithm="brute").fit(bank.numpy(), bank_y.numpy())
    assert np.allclose(votes.numpy() / 20, sk.predict_proba(query.numpy()))
    assert torch.equal(votes.argmax(1), knn_predict(bank, bank_y, query, num_classes=C, k=20))


def test_class_ties_go_to_the_lowest_class_index() -> None:
    bank = torch.tensor([[0.0], [1.0], [-1.0], [5.0]])
    labels = torch.tensor([3, 1, 3, 1])  # the 2 nearest of 0.1: class 3 (0.0) and 1 (1.0)
    assert knn_predict(bank, labels, torch.tensor([[0.1]]), num_classes=4, k=2).item() == 1
    assert knn_predict(bank, labels, torch.tensor([[0.1]]), num_classes=4, k=3).item() == 3


def weighted_loop(bank: Tensor, bank_y: Tensor, query: Tensor, k: int, t: float) -> Tensor:
    """Cosine similarity row by row, the k most similar, votes exp(sim / T), in float64."""
    preds = []
    for q in query.double():
        sims = [float(torch.dot(q, b.double()) / (q.norm() * b.double().norm())) for b in bank]
        top = sorted(range(len(bank)), key=lambda j: -sims[j])[:k]
        score = [0.0] * C
        for j in top:
            score[int(bank_y[j])] += float(np.exp(sims[j] / t))
        preds.append(int(np.argmax(score)))
    return torch.tensor(preds)


@pytest.mark.parametrize("t", [0.07, 0.5])
def test_weighted_knn_matches_a_loop_and_scikit_learn_with_exp_weights(t: float) -> None:
    bank, bank_y = clusters(150, 6, seed=5)
    query, _ = clusters(40, 6, seed=6)
    bank = bank * torch.rand(150, 1, generator=torch.Generator().manual_seed(7), dtype=bank.dtype)
    mine = knn_predict(bank, bank_y, query, num_classes=C, k=20, weighted=True, temperature=t)
    assert torch.equal(mine, weighted_loop(bank, bank_y, query, 20, t))
    sk = KNeighborsClassifier(
        n_neighbors=20, algorithm="brute", metric="cosine", weights=lambda d: np.exp((1 - d) / t)
    ).fit(bank.numpy(), bank_y.numpy())
    assert np.array_equal(mine.numpy(), sk.predict(query.numpy()))


def test_weighted_and_unweighted_differ_when_norms_matter() -> None:
    # cosine ignores the norm, Euclidean does not: the same query, opposite answers
    bank = torch.tensor([[1.0, 0.0], [10.0, 1.0]])
    labels = torch.tensor([0, 1])
    q = torch.tensor([[9.0, 0.0]])
    assert knn_predict(bank, labels, q, num_classes=2, k=1).item() == 1
    assert knn_predict(bank, labels, q, num_classes=2, k=1, weighted=True).item() == 0


def test_bad_inputs_say_what_is_wrong() -> None:
    bank, labels = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="bank holds 4"):
        knn_predict(bank, labels, torch.zeros(2, 3), num_classes=2, k=5)
    with pytest.raises(ValueError, match="same D"):
        knn_predict(bank, labels, torch.zeros(2, 4), num_classes=2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        knn_predict(bank, labels + 2, torch.zeros(2, 3), num_classes=2, k=1)
    with pytest.raises(ValueError, match="temperature > 0"):
        knn_predict(bank, labels, torch.zeros(2, 3), num_classes=2, k=1, temperature=0.0)


def test_queries_of_another_dtype_are_compared_in_the_banks() -> None:
    bank, bank_y = clusters(100, 4, seed=11)
    query, _ = clusters(30, 4, seed=12)
    mine = knn_predict(bank, bank_y, query.float(), num_classes=C, k=5)
    assert torch.equal(mine, knn_predict(bank, bank_y, query.float().double(), num_classes=C, k=5))


def test_linear_probe_is_scikit_learns_logistic_regression() -> None:
    train, train_y = clusters(300, 6, seed=8)
    test, test_y = clusters(150, 6, seed=9)
    l2 = 1e-2
    mean, scale, layer = linear_probe(train, train_y, num_classes=C, epochs=200, l2=l2)
    z = (test - mean) / scale
    mine = torch.softmax(z @ layer[:, :-1].t() + layer[:, -1], 1).numpy()
    sk = LogisticRegression(C=1 / (l2 * len(train)), max_iter=2000, tol=1e-10)
    sk.fit(((train - mean) / scale).numpy(), train_y.numpy())
    np.testing.assert_allclose(mine, sk.predict_proba(z.numpy()), atol=1e-4)
    acc = linear_probe_top1(train, train_y, test, test_y, num_classes=C, epochs=200, l2=l2)
    assert acc == pytest.approx(100.0 * sk.score(z.numpy(), test_y.numpy()))
    again = linear_probe_top1(train, train_y, test, test_y, num_classes=C, epochs=200, l2=l2)
    assert again == acc  # deterministic


def test_knn_top5_counts_only_voted_classes() -> None:
    """ktg eval's kNN top-5: with k = 1 one class has a vote, so top-5 is top-1; a class
    with no vote is never a hit, whatever order the zero votes tie in."""
    from ktg_dsl.run.evaluation import vote_confusion

    bank, bank_y = clusters(300, 8, seed=7)
    query, query_y = clusters(200, 8, seed=8)
    votes = knn_votes(bank, bank_y, query, num_classes=C, k=1)
    matrix, top5 = vote_confusion(votes, query_y)
    assert int(top5) == int(matrix.trace()) < 200
    votes = knn_votes(bank, bank_y, query, num_classes=C, k=20)
    matrix, top5 = vote_confusion(votes, query_y)
    expected = sum(
        float(v[y]) > 0 and y in v.topk(5).indices.tolist()
        for v, y in zip(votes, query_y.tolist(), strict=True)
    )
    assert int(top5) == expected and int(matrix.sum()) == 200
    assert torch.equal(matrix.diagonal().sum(), (votes.argmax(1) == query_y).sum())
