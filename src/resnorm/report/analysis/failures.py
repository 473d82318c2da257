"""Failures as their own outcome: which runs failed, exact intervals on failure rates, and
an exact test between two arms' failure counts.

The rule, declared once (docs/findings.md "Failures"): a run **failed** when it diverged,
or when its score closes less than FAIL_FRACTION of the gap from chance to a perfect score
(accuracy 1, bits per char 0) — the same bar a reference model must clear to have learned a
task (claims.rules.LEARN_FRACTION). A failed run is not a low score: averaging it with
trained runs makes the per-seed differences bimodal, and a mean test then neither sees
rare failures nor bounds them. So score comparisons are made on the seeds where both arms
trained, and failure counts are compared separately, exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

FAIL_FRACTION = 0.25  # share of the chance -> perfect gap a run must close to have trained
LEVEL = 0.95


def failed(runs: pd.DataFrame) -> pd.Series:
    """True for each run that diverged or closes < FAIL_FRACTION of chance -> perfect."""
    n = len(runs)
    value = runs["value"].to_numpy(dtype=float) if n else np.zeros(0)
    chance = runs["chance"].to_numpy(dtype=float) if "chance" in runs else np.full(n, np.nan)
    metric = runs["metric"].to_numpy(dtype=str) if "metric" in runs else np.full(n, "")
    perfect = np.where(np.char.endswith(metric, "bpc"), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (value - chance) / (perfect - chance)
    low = np.isfinite(frac) & (frac < FAIL_FRACTION)
    diverged = runs["diverged"].eq(True).to_numpy() if "diverged" in runs else np.zeros(n, bool)
    return pd.Series(low | diverged | ~np.isfinite(value), index=runs.index, dtype=bool)


def trained(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that did not fail."""
    return runs[~failed(runs)] if len(runs) else runs


def exact_ci(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Clopper–Pearson interval of a rate from k of n (beta quantiles)."""
    if n == 0:
        return (0.0, 1.0)
    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(sps.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(sps.beta.ppf(1 - a, k + 1, n - k))
    return (low, high)


@dataclass(frozen=True)
class Count:
    """k failed of n seeds (one value per seed: a seed failed if any of its runs did)."""

    k: int
    n: int

    @property
    def ci(self) -> tuple[float, float]:
        return exact_ci(self.k, self.n)

    def text(self) -> str:
        low, high = self.ci
        return f"{self.k}/{self.n} failed [{low:.0%}, {high:.0%}]"


def count(runs: pd.DataFrame) -> Count:
    """Failed seeds of these runs (a seed with any failed run counts as failed)."""
    if runs.empty:
        return Count(0, 0)
    seeds = runs["seed"].to_numpy(dtype=float)
    bad = failed(runs).to_numpy()
    return Count(len(np.unique(seeds[bad])), len(np.unique(seeds)))


def p_fewer(a: Count, b: Count) -> float:
    """One-sided exact p of H0 rate(a) >= rate(b): Fisher's exact test on the 2x2 table of
    failed vs trained seeds per arm (small p: a fails less often than b)."""
    if a.n == 0 or b.n == 0:
        return math.nan
    table = [[a.k, a.n - a.k], [b.k, b.n - b.k]]
    return float(sps.fisher_exact(table, alternative="less").pvalue)


def note(a: Count, b: Count, names: tuple[str, str] = ("a", "b")) -> str:
    """Both arms' failure counts, for a verdict's line."""
    return f"failures {names[0]} {a.text()}, {names[1]} {b.text()}"
