"""LR sensitivity (Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer
training instabilities", Sec. 2):

    sensitivity = E_{lr in grid} [ min(L(lr), L_0) - min_{lr'} L(lr') ]

L(lr) is the final loss of the run trained at lr (here the test loss). Wortsman et al. clamp
at the model's loss at initialisation: a run counts at most as badly as the untrained model,
so one blow-up cannot dominate the mean and a diverged run (no finite final loss) counts as
L_0. Their compared models start at the same loss; the variants here do not (no norm starts
well above the others), and a clamp per variant would then measure the initial loss as much
as the LR sensitivity. So L_0 is one value per task, common to every variant: the lowest
loss at initialisation of any of the task's cells (median over the cell's runs), i.e. the
loss a model of this task has without training (close to the uniform prediction's
ln(classes), which the runs do not record).

Computed per seed over one LR set, then averaged over seeds with a 95% t-interval. A grid is
one cell key but its lr (``cells``: heads, width, schedule, ... are never pooled); repeated
runs at one lr of one seed (a relaunch) are averaged, after the clamp. Sensitivities are set
side by side only on one LR set: ``table`` computes every variant of a setting on each LR
set it covers, and every seed of a row on exactly that set.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from resnorm.report.analysis.cells import cell_keys, key_values, shown_keys
from resnorm.report.analysis.stats import Estimate, mean_ci
from resnorm.report.sources.rows import usable

DEFINITION = (
    "LR sensitivity (Wortsman et al. 2023): E over the LR grid of "
    "[min(final loss(lr), L_0) − best final loss over the grid]; final loss = test loss, a "
    "diverged run counts as L_0. Wortsman et al. clamp at the model's loss at init; the "
    "variants here start at different losses, so L_0 is one clamp per task, common to every "
    "variant: the lowest loss at init of any of the task's cells (median over its runs), the "
    "loss without training (close to the uniform prediction's ln(classes)). Lower = less "
    "sensitive. Computed per seed on one LR set (one grid per architecture and setting but "
    "lr; repeated runs at one lr averaged), then mean and 95% t-interval over seeds. "
    "Sensitivities are compared only on one LR set: the table computes each variant of a "
    "setting on every LR set it covers (≥ 3 LRs), each seed of a row on exactly that set."
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


def clamps(df: pd.DataFrame) -> dict[object, float]:
    """L_0 per task (key None when ``df`` has no task column): the lowest of its cells'
    median loss at init, over every variant and setting of the task."""
    ok = usable(df)
    if ok.empty or "init_loss" not in ok:
        return {}
    ok = ok if "task" in ok else ok.assign(task=None)
    cells = ok.groupby(cell_keys(ok, without=("lr",)), dropna=False, as_index=False)
    med = cells["init_loss"].median().dropna(subset=["init_loss"])
    lows = med.groupby("task", dropna=False)["init_loss"].min()
    return {task: float(v) for task, v in lows.items()}


def final_losses(g: pd.DataFrame) -> pd.Series:
    """Per lr, the final losses of its runs (a diverged run without one: inf)."""
    final = np.where(g["diverged"] & ~np.isfinite(g["test_loss"]), np.inf, g["test_loss"])
    return pd.Series(final, index=g.index).groupby(g["lr"]).agg(list)


def per_seed(
    df: pd.DataFrame,
    lrs: Collection[float] | None = None,
    init: Mapping[object, float] | None = None,
) -> pd.DataFrame:
    """One row per grid (task, arch, every setting but lr, seed) with >= MIN_GRID LRs.

    ``lrs``: only grids that have every one of these LRs, computed on exactly them (for a
    comparison on one LR set). ``init``: the clamp per task (``clamps``); by default that of
    ``df`` itself, so pass the task's clamps when ``df`` holds only some of its variants.
    """
    ok = usable(df)
    init = clamps(ok) if init is None else init
    keys = grid_keys(ok)
    rows = []
    for key, g in ok.groupby(keys, dropna=False) if len(ok) else ():
        if lrs is not None:
            if not set(lrs) <= set(g["lr"]):
                continue
            g = g[g["lr"].isin(list(lrs))]
        if g["lr"].nunique() < MIN_GRID:
            continue
        row = key_values(keys, key)
        l0 = float(init.get(row.get("task"), math.nan))
        by_lr = final_losses(g)
        final = [float(np.mean(clamp(v, l0))) for v in by_lr] if math.isfinite(l0) else []
        row["lr_sensitivity"] = sensitivity(np.array(final), l0)
        row["clamp"] = l0
        row["n_lrs"] = int(len(by_lr))
        row["lrs"] = tuple(float(x) for x in sorted(by_lr.index))
        rows.append(row)
    return pd.DataFrame(rows)


def lr_text(lrs: Collection[float]) -> str:
    return ", ".join(f"{x:g}" for x in sorted(lrs))


def lr_sets(g: pd.DataFrame) -> list[tuple[float, ...]]:
    """The LR sets to compare ``g``'s variants on (``g``: one task and setting): each
    variant's own grid (the LRs it has runs at) of >= MIN_GRID LRs, largest first."""
    sets = {tuple(sorted(set(a["lr"].dropna()))) for _, a in g.groupby("arch")}
    return sorted((s for s in sets if len(s) >= MIN_GRID), key=lambda s: (-len(s), s))


def table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean sensitivity and CI over seeds, per task x setting (all but arch and lr) x LR set
    x architecture: every variant of a setting is computed on every LR set it covers (its
    own grid and each other variant's), so rows side by side share their LR set and L_0."""
    ok = usable(df)
    if ok.empty:
        return pd.DataFrame()
    init = clamps(ok)
    keys = shown_keys(ok, without=("lr",))
    setting = [k for k in cell_keys(ok, without=("lr",)) if k != "arch"]
    rows = []
    for _, g in ok.groupby(setting, dropna=False, sort=True):
        for lrs in lr_sets(g):
            ps = per_seed(g, lrs, init)
            for key, s in ps.groupby(keys, dropna=False, sort=True) if len(ps) else ():
                est: Estimate = mean_ci(s["lr_sensitivity"])
                row = key_values(keys, key)
                row.update(
                    {
                        "lrs": lr_text(lrs),
                        "n_lrs": len(lrs),
                        "mean": est.mean,
                        "ci_low": est.low,
                        "ci_high": est.high,
                        "seeds": int(s["seed"].nunique()) if "seed" in s else len(s),
                        "clamp": float(s["clamp"].iloc[0]),
                    }
                )
                rows.append(row)
    return pd.DataFrame(rows)


def key_columns(t: pd.DataFrame) -> list[str]:
    """The cell-key columns of a ``table`` (task, arch, depth and each varying setting)."""
    return cell_keys(t, without=("lr",))
