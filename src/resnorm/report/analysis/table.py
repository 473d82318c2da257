"""The summary table: one row per cell (``cells``: task x architecture x every setting but
the seed; the settings that vary in the report are shown as columns).

Each cell aggregates only completed/diverged runs; running, failed and pruned runs are
counted in ``not_aggregated`` so the reader sees them without them moving a mean.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from resnorm.report.analysis.cells import cell_keys, key_values, shown_keys
from resnorm.report.analysis.stats import mean_ci
from resnorm.report.sources.rows import usable

TARGET_FRACTION = 0.9  # default target: 90% of the way from chance to the best cell's mean


def higher_is_better(metric: str) -> bool:
    return not metric.endswith("bpc")


def group_keys(df: pd.DataFrame) -> list[str]:
    """task, arch, depth, plus the cell key's settings that vary in this report (a cell is
    a whole architecture and training setting: heads 1 and 4 are two rows)."""
    return shown_keys(df)


def targets(df: pd.DataFrame, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Per task, the validation score a run must reach to count as 'trained'."""
    out: dict[str, float] = {}
    ok = usable(df)
    for task, g in ok.groupby("task"):
        if overrides and task in overrides:
            out[task] = overrides[task]
            continue
        best_cells = g.groupby(cell_keys(g), dropna=False)["value"]
        means = best_cells.mean().dropna()
        chance = g["chance"].dropna()
        if means.empty:
            continue
        metric = g["metric"].iloc[0]
        best = means.max() if higher_is_better(metric) else means.min()
        base = float(chance.iloc[0]) if len(chance) else (0.0 if higher_is_better(metric) else best)
        out[task] = base + TARGET_FRACTION * (best - base)
    return out


def steps_to_target(val_curve: pd.DataFrame | None, target: float, higher: bool) -> float:
    """First logged step whose validation score reaches ``target``; NaN if none does."""
    if val_curve is None or not len(val_curve) or not math.isfinite(target):
        return math.nan
    col = val_curve.columns[1]
    hit = val_curve[col] >= target if higher else val_curve[col] <= target
    return float(val_curve.loc[hit, "step"].iloc[0]) if hit.any() else math.nan


def add_steps_to_target(df: pd.DataFrame, task_targets: dict[str, float]) -> pd.DataFrame:
    df = df.copy()
    df["steps_to_target"] = [
        steps_to_target(r.val_curve, task_targets.get(r.task, math.nan), higher_is_better(r.metric))
        for r in df.itertuples()
    ]
    return df


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: mean +- 95% CI of the headline over seeds, divergence, spikes, speed."""
    if df.empty:
        return pd.DataFrame()
    keys = group_keys(df)
    rows = []
    for key, g in df.groupby(keys, dropna=False, sort=True):
        ok = g[g["usable"]]
        est = mean_ci(ok["value"])
        reached = ok["steps_to_target"].dropna() if "steps_to_target" in ok else pd.Series([])
        row = key_values(keys, key)
        row.update(
            {
                "metric": g["metric"].iloc[0],
                "n": len(ok),
                "seeds": int(ok["seed"].nunique()),
                "mean": est.mean,
                "ci_low": est.low,
                "ci_high": est.high,
                "divergence_rate": float(ok["diverged"].mean()) if len(ok) else math.nan,
                "spikes_mean": float(ok["spike_count"].mean()) if len(ok) else math.nan,
                "steps_to_target": float(np.median(reached)) if len(reached) else math.nan,
                "reached": f"{len(reached)}/{len(ok)}",
                "not_aggregated": int((~g["usable"]).sum()),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def modal_setting(df: pd.DataFrame, task: str) -> pd.DataFrame:
    """The task's runs at its most common setting (every cell key but task, arch and depth:
    lr, heads, width, warmup, budget, ...): what depth plots show, one architecture per line."""
    g = usable(df)
    g = g[g["task"] == task]
    keys = cell_keys(g, without=("task", "arch", "depth"))
    if g.empty or not keys:
        return g
    mode = g.groupby(keys, dropna=False).size().idxmax()
    mode = mode if isinstance(mode, tuple) else (mode,)
    mask = np.ones(len(g), dtype=bool)
    for k, v in zip(keys, mode, strict=True):
        mask &= (g[k] == v).to_numpy() | (g[k].isna().to_numpy() & pd.isna(v))
    return g[mask]
