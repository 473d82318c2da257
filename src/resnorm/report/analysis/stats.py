"""Statistics over seeds: t-intervals, one-sided t-tests, paired differences, Holm.

Conventions (stated in the report's Methods section and docs/findings.md):
- The unit of replication is the seed. Runs of two variants that share every setting and
  the seed are *paired*; a comparison over several settings averages each seed's paired
  differences over the settings first, so n is the number of seeds, never seeds x settings.
- A CI is the 95% Student-t interval of the mean (Welch's for unpaired groups). At 3-10
  seeds the percentile bootstrap undercovers badly (at n = 3 it is [min, max], ~75%
  coverage), and an exact sign-flip test cannot go below p = 2^-n (1/8 at n = 3), so it
  could never pass a multiplicity correction. The t-interval is exact for normal per-seed
  noise; tests/test_report_calibration.py measures its error rates on skewed noise too.
- Tests are one-sided t-tests against a threshold; ``holm`` adjusts a report's p-values
  for the number of hypotheses tested in it. When every value is the same (a quantity
  that does not vary with the seed, ties of a discrete measure), the t statistic is
  undefined and there is no p-value (NaN): the seeds are copies of one measurement, not n
  replicates, so claims.verdicts decides such a part as an exact check (a 2^-n sign-test
  p would count the copies as independent evidence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

LEVEL = 0.95
# Values whose spread is below this share of their mean are identical (float rounding).
TIE = 1e-9


@dataclass(frozen=True)
class Estimate:
    """A mean with its t-interval; ``low``/``high`` are None when there are fewer than 2
    values. ``se`` and ``df`` feed the one-sided tests (``p_above`` / ``p_below``)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    paired: bool = False
    se: float | None = None
    df: float | None = None
    note: str = ""  # what the estimate is about, e.g. seeds where both arms trained

    @property
    def has_ci(self) -> bool:
        return self.low is not None and self.high is not None

    def p_above(self, x: float) -> float:
        """One-sided p-value of H0: true mean <= x (small p: evidence the mean is above x)."""
        if not self.has_ci or self.se is None or not math.isfinite(self.mean):
            return math.nan
        if self.se == 0:  # every value equal: one measurement copied, not n replicates
            return math.nan
        return float(sps.t.sf((self.mean - x) / self.se, self.df))

    def p_below(self, x: float) -> float:
        """One-sided p-value of H0: true mean >= x."""
        return self.flipped().p_above(-x)

    def flipped(self) -> Estimate:
        """The estimate of minus the quantity."""
        low, high = (-self.high, -self.low) if self.has_ci else (None, None)
        return Estimate(-self.mean, low, high, self.n, self.paired, self.se, self.df, self.note)

    def text(self, fmt: str = "{:.3g}") -> str:
        if not math.isfinite(self.mean):
            return "n/a"
        if not self.has_ci:
            return f"{fmt.format(self.mean)} (n={self.n}, no CI)"
        return f"{fmt.format(self.mean)} [{fmt.format(self.low)}, {fmt.format(self.high)}]"


NONE = Estimate(math.nan, None, None, 0)


def _clean(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x[np.isfinite(x)]


def _interval(mean: float, se: float, df: float, n: int, paired: bool = False) -> Estimate:
    half = float(sps.t.ppf(0.5 + LEVEL / 2, df)) * se
    return Estimate(mean, mean - half, mean + half, n, paired, se, df)


def mean_ci(values: Sequence[float] | np.ndarray | pd.Series) -> Estimate:
    """Mean of the finite values and its 95% t-interval (None below 2 values)."""
    x = _clean(values)
    if len(x) == 0:
        return NONE
    if len(x) < 2:
        return Estimate(float(x[0]), None, None, 1)
    mean, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))
    if se <= TIE * abs(mean):  # identical up to float rounding (a - b of sums, means)
        return Estimate(mean, mean, mean, len(x), se=0.0, df=len(x) - 1)
    return _interval(mean, se, len(x) - 1, len(x))


def unpaired_difference(
    a: Sequence[float] | np.ndarray | pd.Series, b: Sequence[float] | np.ndarray | pd.Series
) -> Estimate:
    """mean(a) - mean(b) with Welch's t-interval; n is the smaller group."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) == 0 or len(xb) == 0:
        return NONE
    diff, n = float(xa.mean() - xb.mean()), min(len(xa), len(xb))
    if n < 2:
        return Estimate(diff, None, None, n)
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    se = math.sqrt(va + vb)
    if se <= TIE * abs(diff):
        return Estimate(diff, diff, diff, n, se=0.0, df=float(len(xa) + len(xb) - 2))
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    return _interval(diff, se, df, n)


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


def complete_settings(pairs: pd.DataFrame, setting: Sequence[str], min_seeds: int) -> pd.DataFrame:
    """The pairs of the settings to judge at, each seed's values averaged over them.

    A setting is complete when it has ``min_seeds`` paired seeds. All complete settings are
    used when at least ``min_seeds`` seeds are common to them; otherwise the complete
    setting with the most seeds (the last in sort order on ties: the deepest). Returns the
    used pairs; an empty frame when no setting is complete.
    """
    if pairs.empty:
        return pairs
    if not setting:
        return pairs if pairs["seed"].nunique() >= min_seeds else pairs.iloc[0:0]
    counts = pairs.groupby(list(setting), dropna=False)["seed"].nunique()
    done = counts[counts >= min_seeds]
    if done.empty:
        return pairs.iloc[0:0]
    keys = set(done.index)
    at = pd.Series([k in keys for k in _keys(pairs, setting)], index=pairs.index)
    used = pairs[at]
    per_setting = used.groupby(list(setting), dropna=False)["seed"].apply(set)
    common = set.intersection(*per_setting)
    if len(common) >= min_seeds:
        return used[used["seed"].isin(common)]
    best = max(done.index, key=lambda k: (done[k], k))
    return pairs[pd.Series([k == best for k in _keys(pairs, setting)], index=pairs.index)]


def _keys(frame: pd.DataFrame, setting: Sequence[str]) -> list:
    rows = frame[list(setting)].itertuples(index=False, name=None)
    return [r if len(setting) > 1 else r[0] for r in rows]


def difference(
    a: pd.DataFrame, b: pd.DataFrame, keys: Sequence[str], value: str, min_seeds: int = 1
) -> tuple[Estimate, pd.DataFrame]:
    """a - b on ``value``: paired on ``keys`` (setting keys + ``seed``) when pairs exist.

    Paired: only complete settings count (``complete_settings``), and each seed's
    differences are averaged over them, so n is a number of seeds. Unpaired (no shared
    seed): Welch's interval over the two groups' per-seed means, each over the settings
    both arms have, from the seeds that ran all of them. Returns the estimate and
    the pairs used (empty when unpaired).
    """
    setting = [k for k in keys if k != "seed"]
    pairs = complete_settings(pair(a, b, keys, value), setting, min_seeds)
    if len(pairs):
        est = mean_ci(pairs.groupby("seed")["diff"].mean())
        return Estimate(est.mean, est.low, est.high, est.n, True, est.se, est.df), pairs
    if setting and "seed" in a and "seed" in b:
        a, b = _every_setting(a, b, setting), _every_setting(b, a, setting)
    per_seed = [g.groupby("seed")[value].mean() if "seed" in g else g[value] for g in (a, b)]
    return unpaired_difference(*per_seed), pairs


def _every_setting(g: pd.DataFrame, other: pd.DataFrame, setting: list[str]) -> pd.DataFrame:
    """``g``'s seeds that ran every setting both arms have, at those settings: so each arm's
    per-seed mean averages the same settings (a seed with only the easy one is not pooled
    with a seed that has only the hard one)."""
    both = g[setting].drop_duplicates().merge(other[setting].drop_duplicates(), on=setting)
    g = g.merge(both, on=setting)
    seen = g.drop_duplicates([*setting, "seed"]).groupby("seed").size()
    return g[g["seed"].isin(seen[seen == len(both)].index)]


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (NaN entries are not hypotheses and stay NaN).

    Reject hypothesis i at family-wise level alpha iff adjusted[i] <= alpha.
    """
    p = np.asarray(pvalues, dtype=float)
    ok = np.flatnonzero(np.isfinite(p))
    out = np.full(len(p), math.nan)
    m, running = len(ok), 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


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
