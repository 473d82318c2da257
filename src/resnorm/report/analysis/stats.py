"""Statistics over seeds: percentile-bootstrap CIs and paired differences.

Conventions (stated in the report's Methods section):
- A CI is the 95% percentile bootstrap of the mean, 4000 resamples, fixed RNG seed, so
  a report is reproducible. Fewer than 2 values: no CI (None), never a fake one.
- Runs that share a seed and every setting but the compared one are *paired*; the
  bootstrap then resamples the per-pair differences. Otherwise the two groups are
  resampled independently.
- Equivalence (judged in claims.rules): the 95% CI of the difference lies inside
  (-margin, +margin). This is stricter than TOST at alpha=0.05 (which uses the 90% CI).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

N_RESAMPLES = 4000
LEVEL = 0.95
RNG_SEED = 20230  # any fixed value: the same inputs always give the same interval


@dataclass(frozen=True)
class Estimate:
    """A mean with its CI; ``low``/``high`` are None when there are fewer than 2 values."""

    mean: float
    low: float | None
    high: float | None
    n: int
    paired: bool = False

    @property
    def has_ci(self) -> bool:
        return self.low is not None and self.high is not None

    def text(self, fmt: str = "{:.3g}") -> str:
        if not math.isfinite(self.mean):
            return "n/a"
        if not self.has_ci:
            return f"{fmt.format(self.mean)} (n={self.n}, no CI)"
        return f"{fmt.format(self.mean)} [{fmt.format(self.low)}, {fmt.format(self.high)}]"


def _clean(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x[np.isfinite(x)]


def bootstrap_means(x: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` resamples of ``x`` with replacement."""
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    return x[idx].mean(axis=1)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(samples, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def mean_ci(
    values: Sequence[float] | np.ndarray | pd.Series,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = RNG_SEED,
) -> Estimate:
    """Mean of the finite values and its percentile-bootstrap CI (None below 2 values)."""
    x = _clean(values)
    if len(x) == 0:
        return Estimate(math.nan, None, None, 0)
    if len(x) < 2:
        return Estimate(float(x[0]), None, None, 1)
    rng = np.random.default_rng(seed)
    low, high = percentile_interval(bootstrap_means(x, n_resamples, rng), level)
    return Estimate(float(x.mean()), low, high, len(x))


def unpaired_difference(
    a: Sequence[float] | np.ndarray | pd.Series,
    b: Sequence[float] | np.ndarray | pd.Series,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = RNG_SEED,
) -> Estimate:
    """mean(a) - mean(b), each group resampled on its own; n is the smaller group."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) == 0 or len(xb) == 0:
        return Estimate(math.nan, None, None, 0)
    diff = float(xa.mean() - xb.mean())
    n = min(len(xa), len(xb))
    if n < 2:
        return Estimate(diff, None, None, n)
    rng = np.random.default_rng(seed)
    samples = bootstrap_means(xa, n_resamples, rng) - bootstrap_means(xb, n_resamples, rng)
    low, high = percentile_interval(samples, level)
    return Estimate(diff, low, high, n)


def pair(a: pd.DataFrame, b: pd.DataFrame, keys: Sequence[str], value: str) -> pd.DataFrame:
    """Rows of ``a`` and ``b`` matched on ``keys`` (one row per match): value_a, value_b, diff.

    Rows whose value is not finite are dropped before matching.
    """
    cols = list(keys) + [value]
    left = a[cols][np.isfinite(a[value].astype(float))].drop_duplicates(list(keys))
    right = b[cols][np.isfinite(b[value].astype(float))].drop_duplicates(list(keys))
    merged = left.merge(right, on=list(keys), suffixes=("_a", "_b"))
    merged["diff"] = merged[f"{value}_a"].astype(float) - merged[f"{value}_b"].astype(float)
    return merged


def difference(
    a: pd.DataFrame, b: pd.DataFrame, keys: Sequence[str], value: str, pair_on: str = "seed"
) -> tuple[Estimate, pd.DataFrame]:
    """a - b on ``value``: paired on ``keys`` when any pairs exist, else unpaired.

    Returns the estimate and the pairs used (empty when unpaired).
    """
    pairs = pair(a, b, keys, value)
    if len(pairs):
        est = mean_ci(pairs["diff"])
        return Estimate(est.mean, est.low, est.high, est.n, paired=True), pairs
    return unpaired_difference(a[value], b[value]), pairs


def spread_of_log(values: Sequence[float]) -> float:
    """ln(max/min) of positive values: how far a per-layer profile is from flat."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.log(x.max() / x.min())) if len(x) >= 2 else math.nan


def log_slope(values: Sequence[float]) -> float:
    """OLS slope of ln(value) against depth fraction 0..1: ln-growth across the stack.

    exp(slope) approximates last/first; 0 means flat (Xiong et al. 2020, Fig. 3).
    """
    y = np.asarray(values, dtype=float)
    if len(y) < 2 or not np.all(np.isfinite(y)) or np.any(y <= 0):
        return math.nan
    x = np.linspace(0.0, 1.0, len(y))
    return float(np.polyfit(x, np.log(y), 1)[0])
