"""LR sensitivity (Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer
training instabilities", Sec. 2):

    sensitivity = E_{lr in grid} [ min(L(lr), L_0) - min_{lr'} L(lr') ]

L(lr) is the final loss of the run trained at lr (here the test loss), L_0 the loss at
initialisation. A diverged run (no finite final loss) counts as L_0: the clamp stops one
blow-up from dominating the mean. Computed per seed over the LR grid that seed has,
then averaged over seeds with a 95% t-interval. A grid is one cell key but its lr
(``cells``: heads, width, schedule, ... are never pooled); repeated runs at one lr of one
seed (a relaunch) are averaged, after the clamp, rather than one of them picked.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from resnorm.report.analysis.cells import cell_keys, key_values, shown_keys
from resnorm.report.analysis.stats import Estimate, mean_ci
from resnorm.report.sources.rows import usable

DEFINITION = (
    "LR sensitivity (Wortsman et al. 2023): E over the LR grid of "
    "[min(final loss(lr), loss at init) − best final loss over the grid]; final loss = test "
    "loss, a diverged run counts as the loss at init. Lower = less sensitive. Computed per "
    "seed (one grid per architecture and setting but lr; repeated runs at one lr "
    "averaged), then mean and 95% t-interval over seeds."
)
MIN_GRID = 3  # fewer LRs than this say nothing about sensitivity


def clamp(final: np.ndarray | list[float], init: float) -> np.ndarray:
    """min(L, L_0), and L_0 for a run without a finite final loss (diverged)."""
    final = np.asarray(final, dtype=float)
    return np.where(np.isfinite(final), np.minimum(final, init), init)


def sensitivity(final: np.ndarray, init: float) -> float:
    """The formula above for one seed's grid of final losses."""
    final = np.asarray(final, dtype=float)
    if len(final) == 0 or not math.isfinite(init):
        return math.nan
    clamped = clamp(final, init)
    return float(np.mean(clamped - clamped.min()))


def grid_keys(df: pd.DataFrame) -> list[str]:
    """One LR grid: the whole cell key but lr, and the seed."""
    return [*cell_keys(df, without=("lr",)), *(["seed"] if "seed" in df else [])]


def final_losses(g: pd.DataFrame) -> pd.Series:
    """Per lr, the final losses of its runs (a diverged run without one: inf)."""
    final = np.where(g["diverged"] & ~np.isfinite(g["test_loss"]), np.inf, g["test_loss"])
    return pd.Series(final, index=g.index).groupby(g["lr"]).agg(list)


def per_seed(df: pd.DataFrame, lrs: set[float] | None = None) -> pd.DataFrame:
    """One row per grid (task, arch, every setting but lr, seed) with >= MIN_GRID LRs.

    ``lrs`` restricts every grid to the same LRs (for a fair comparison of two variants).
    """
    ok = usable(df)
    keys = grid_keys(ok)
    rows = []
    for key, g in ok.groupby(keys, dropna=False) if len(ok) else ():
        if lrs is not None:
            g = g[g["lr"].isin(lrs)]
        if g["lr"].nunique() < MIN_GRID:
            continue
        init = g["init_loss"].dropna()
        l0 = float(init.median()) if len(init) else math.nan
        by_lr = final_losses(g)
        final = [float(np.mean(clamp(v, l0))) for v in by_lr] if math.isfinite(l0) else []
        row = key_values(keys, key)
        row["lr_sensitivity"] = sensitivity(np.array(final), l0)
        row["n_lrs"] = int(len(by_lr))
        row["lrs"] = tuple(float(x) for x in sorted(by_lr.index))
        rows.append(row)
    return pd.DataFrame(rows)


def table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean sensitivity and CI over seeds, per task x architecture x setting (all but lr)."""
    ps = per_seed(df)
    if ps.empty:
        return ps
    keys = shown_keys(ps, without=("lr",))
    rows = []
    for key, g in ps.groupby(keys, dropna=False, sort=True):
        est: Estimate = mean_ci(g["lr_sensitivity"])
        row = key_values(keys, key)
        row.update(
            {
                "mean": est.mean,
                "ci_low": est.low,
                "ci_high": est.high,
                "seeds": int(g["seed"].nunique()),
                "lrs": ", ".join(f"{x:g}" for x in sorted({lr for t in g["lrs"] for lr in t})),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)
