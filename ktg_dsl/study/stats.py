"""The numbers of a study: the spread of values over seeds, and the paired comparison of two
specs over the seeds both ran (differences seed by seed: the same seed means the same data
split, initialisation order and batches, so pairing removes that part of the variance).

- mean difference and its 95% confidence interval, mean ± t(0.975, n-1) · sd / sqrt(n): the
  effect size, in percentage points;
- the paired t-test (``scipy.stats.ttest_rel``, two-sided): t = mean / (sd / sqrt(n));
- the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided) from
  ``WILCOXON_MIN_N`` seeds: with fewer its smallest possible p-value is 0.125 or more, so it
  could never say anything.

scipy is imported when a comparison is computed, never on import.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

WILCOXON_MIN_N = 5
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Spread:
    """Values over seeds: their number, mean, sample standard deviation (n-1; None for one
    value), minimum and maximum."""

    n: int
    mean: float
    std: float | None
    min: float
    max: float


def spread(values: Sequence[float]) -> Spread | None:
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return Spread(len(values), statistics.fmean(values), std, min(values), max(values))


@dataclass(frozen=True)
class Paired:
    """``a`` against ``b``, seed by seed (differences a - b)."""

    n: int
    mean_diff: float
    std_diff: float | None
    ci_low: float | None
    ci_high: float | None
    t: float | None
    p_t: float | None
    p_wilcoxon: float | None
    note: str = ""  # why a number is missing


def paired(a: Sequence[float], b: Sequence[float]) -> Paired:
    """The paired comparison of ``a`` and ``b`` (the same seeds, in the same order)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired values need the same, non-zero length ({len(a)} vs {len(b)})")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n, mean = len(diffs), statistics.fmean(diffs)
    if n < 2:
        note = "one seed: no spread, no test"
        return Paired(n, mean, None, None, None, None, None, None, note)
    sd = statistics.stdev(diffs)
    if sd == 0.0:
        note = "every seed differs by the same amount: no spread, so no t-test"
        return Paired(n, mean, 0.0, mean, mean, None, None, _wilcoxon(a, b, diffs), note)
    from scipy import stats

    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    test = stats.ttest_rel(a, b)
    p_w = _wilcoxon(a, b, diffs)
    note = "" if n >= WILCOXON_MIN_N else f"Wilcoxon needs {WILCOXON_MIN_N}+ seeds"
    return Paired(
        n, mean, sd, mean - half, mean + half, float(test.statistic), float(test.pvalue), p_w, note
    )


def _wilcoxon(a: Sequence[float], b: Sequence[float], diffs: Sequence[float]) -> float | None:
    if len(diffs) < WILCOXON_MIN_N or not any(diffs):
        return None
    from scipy import stats

    with warnings.catch_warnings():  # ties and zeros: scipy notes its switch to the normal
        warnings.simplefilter("ignore")  # approximation; the p-value is still the one to report
        return float(stats.wilcoxon(a, b).pvalue)
