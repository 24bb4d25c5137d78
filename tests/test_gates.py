"""Gate weights against the formulas of DESIGN.md, at every epoch, short runs included."""

from __future__ import annotations

import math

import pytest

from ktg_dsl.registry import GATES, load_builtins

load_builtins()


def gate(name: str, **args: float):
    return GATES.get(name).build(args)


@pytest.mark.parametrize("E", [1, 2, 3, 5, 200])
def test_builtin_formulas(E: int) -> None:
    for e in range(E):
        assert gate("through").weight(e, E) == 1.0
        assert gate("cutoff").weight(e, E) == 0.0
        if E <= 1:
            pos, neg = (1.0 if e > 0 else 0.0), (1.0 if e == 0 else 0.0)
        else:
            pos, neg = e / (E - 1), min(max((E - 1 - e) / (E - 1), 0.0), 1.0)
        assert gate("positive_linear").weight(e, E) == pytest.approx(pos, abs=1e-12)
        assert gate("negative_linear").weight(e, E) == pytest.approx(neg, abs=1e-12)


def test_two_epochs_exactly() -> None:
    assert [gate("positive_linear").weight(e, 2) for e in range(2)] == [0.0, 1.0]
    assert [gate("negative_linear").weight(e, 2) for e in range(2)] == [1.0, 0.0]


def test_one_epoch_rising_gate_never_opens() -> None:
    assert not gate("positive_linear").can_open(1)
    assert gate("negative_linear").can_open(1)
    assert gate("positive_linear").can_open(2)


def test_parametric_gates() -> None:
    lin = gate("linear", start=0.2, end=0.8)
    assert lin.weight(0, 5) == pytest.approx(0.2) and lin.weight(4, 5) == pytest.approx(0.8)
    assert lin.weight(2, 5) == pytest.approx(0.5)
    cos = gate("cosine", start=1.0, end=0.0)
    assert cos.weight(0, 3) == pytest.approx(1.0) and cos.weight(2, 3) == pytest.approx(0.0)
    assert cos.weight(1, 3) == pytest.approx(0.5)
    st = gate("step", at=0.5, before=0.0, after=2.0)
    assert [st.weight(e, 5) for e in range(5)] == [0.0, 0.0, 2.0, 2.0, 2.0]
    g = gate("positive_gamma", gamma=2.0)
    assert g.weight(1, 5) == pytest.approx(math.sqrt(0.25))
    assert gate("negative_gamma", gamma=0.5).weight(1, 5) == pytest.approx(0.75**2)


def test_styles_for_rendering() -> None:
    assert gate("positive_linear").style == "rising"
    assert gate("negative_linear").style == "falling"
    assert gate("linear", start=1.0, end=0.0).style == "falling"
    assert gate("correct").per_sample and gate("correct").style == "correct"
    assert gate("cutoff").never_open and not gate("through").never_open


def test_can_open_on_long_horizons_samples_the_whole_range() -> None:
    late = gate("step", at=0.999, before=0.0, after=1.0)
    assert late.can_open(100_000)
    assert not gate("linear", start=0.0, end=0.0).can_open(100_000)
