"""LR sensitivity (Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer
training instabilities", Sec. 2):

    sensitivity = E_{lr in grid} [ min(L(lr), L_0) - min_{lr'} L(lr') ]

L(lr) is the final loss of the run trained at lr (here the test loss), L_0 the loss at
initialisation. A diverged run (no finite final loss) counts as L_0: the clamp stops one
blow-up from dominating the mean. Computed per seed over the LR grid that seed has,
then averaged over seeds with a 95% t-interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from resnorm.report.analysis.stats import Estimate, mean_ci
from resnorm.report.sources.rows import usable

DEFINITION = (
    "LR sensitivity (Wortsman et al. 2023): E over the LR grid of "
    "[min(final loss(lr), loss at init) − best final loss over the grid]; final loss = test "
    "loss, a diverged run counts as the loss at init. Lower = less sensitive. Computed per "
    "seed, then mean and 95% t-interval over seeds."
)
GRID_KEYS = ("task", "arch", "depth", "dim", "warmup_steps", "max_steps", "seed")
MIN_GRID = 3  # fewer LRs than this say nothing about sensitivity


def sensitivity(final: np.ndarray, init: float) -> float:
    """The formula above for one seed's grid of final losses."""
    final = np.asarray(final, dtype=float)
    if len(final) == 0 or not math.isfinite(init):
        return math.nan
    clamped = np.where(np.isfinite(final), np.minimum(final, init), init)
    return float(np.mean(clamped - clamped.min()))


def per_seed(df: pd.DataFrame, lrs: set[float] | None = None) -> pd.DataFrame:
    """One row per (task, arch, depth, ..., seed) with >= MIN_GRID learning rates.

    ``lrs`` restricts every grid to the same LRs (for a fair comparison of two variants).
    """
    ok = usable(df)
    keys = [k for k in GRID_KEYS if k in ok]
    rows = []
    for key, g in ok.groupby(keys, dropna=False):
        if lrs is not None:
            g = g[g["lr"].isin(lrs)]
        g = g.drop_duplicates("lr")
        if g["lr"].nunique() < MIN_GRID:
            continue
        init = g["init_loss"].dropna()
        final = np.where(g["diverged"] & ~np.isfinite(g["test_loss"]), np.inf, g["test_loss"])
        row = dict(zip(keys, key, strict=True))
        row["lr_sensitivity"] = sensitivity(final, float(init.median()) if len(init) else math.nan)
        row["n_lrs"] = int(g["lr"].nunique())
        row["lrs"] = tuple(sorted(g["lr"]))
        rows.append(row)
    return pd.DataFrame(rows)


def table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean sensitivity and CI over seeds, per task x variant x depth."""
    ps = per_seed(df)
    if ps.empty:
        return ps
    rows = []
    for (task, arch, depth), g in ps.groupby(["task", "arch", "depth"]):
        est: Estimate = mean_ci(g["lr_sensitivity"])
        rows.append(
            {
                "task": task,
                "arch": arch,
                "depth": depth,
                "mean": est.mean,
                "ci_low": est.low,
                "ci_high": est.high,
                "seeds": int(g["seed"].nunique()),
                "lrs": ", ".join(f"{x:g}" for x in sorted({lr for t in g["lrs"] for lr in t})),
            }
        )
    return pd.DataFrame(rows)
