"""The trainability frontier: per task x variant x depth, the largest learning rate at which
training still succeeds.

A run *succeeds* when it is usable (completed or diverged, not failed/running/pruned), did
not diverge, and its headline score is at least ``SUCCESS_FRACTION`` of the way from chance
to the task's best cell mean (for bpc, lower is better: the way runs from chance bpc down
to the best). A task whose best cell does not beat chance has no successes. Per seed, the
max stable LR is the largest grid LR ``L`` such that every grid LR from the smallest that
succeeded up to ``L`` succeeded: a failure ends the frontier even when a larger LR succeeds
again. Failures below the first success do not end it: an LR too small to reach the bar
within the budget says how slow training is, not where it breaks. No success at any LR:
"none" (NaN here). Over seeds: the median (the lower middle value for an even number of
seeds, so it is always a grid LR; "none" ranks below every LR) and the range.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from resnorm.report.analysis.table import higher_is_better
from resnorm.report.sources.rows import usable

SUCCESS_FRACTION = 0.5  # X: the share of the gap from chance to the best cell a run must close
MIN_GRID = 3  # a seed with fewer LRs than this says nothing about where training breaks
SEED_KEYS = ("task", "arch", "depth", "dim", "warmup_steps", "max_steps", "seed")
SETTINGS = ("dim", "warmup_steps", "max_steps")  # shown as columns only when they vary
CELL_KEYS = ("arch", "depth", "lr", *SETTINGS)  # a cell of the best-cell-mean search
COLUMNS = ["task", "arch", "depth", "seeds", "lr_grid", "max_lr_median", "max_lr_low",
           "max_lr_high", "none_seeds"]  # fmt: skip


def definition(fraction: float = SUCCESS_FRACTION) -> str:
    """The rule in words, for the report and the figure caption."""
    return (
        "Trainability frontier: the largest learning rate at which training succeeds. A run "
        "succeeds when it finished (completed or diverged), did not diverge, and its test "
        f"score closes at least {fraction:.0%} of the gap from chance to the task's best cell "
        "mean (bpc: from chance bpc down to the best). Per seed, the max stable LR is the "
        "largest grid LR L such that every grid LR from the smallest successful one up to L "
        "succeeded (a failure in the middle of the grid ends it; failures below the first "
        "success, LRs too small for the budget, do not); 'none': no LR succeeded. Median over "
        "seeds (lower middle value for an even count), range = min..max over seeds; "
        "'≥' marks the largest LR of the grid (the frontier may lie beyond it). "
        f"Only seeds with ≥ {MIN_GRID} learning rates count."
    )


def thresholds(df: pd.DataFrame, fraction: float = SUCCESS_FRACTION) -> dict[str, float]:
    """Per task, the score a run must reach; NaN when the best cell does not beat chance.

    Accuracy without a recorded chance level falls back to 0; bpc cannot, so such a task
    gets no threshold (and no frontier).
    """
    out: dict[str, float] = {}
    ok = usable(df)
    for task, g in ok.groupby("task"):
        means = g.groupby([k for k in CELL_KEYS if k in g], dropna=False)["value"].mean()
        means = means.dropna()
        higher = higher_is_better(str(g["metric"].iloc[0]))
        chance = g["chance"].dropna()
        if means.empty or (not len(chance) and not higher):
            continue
        base = float(chance.iloc[0]) if len(chance) else 0.0
        best = float(means.max() if higher else means.min())
        beats = best > base if higher else best < base
        out[str(task)] = base + fraction * (best - base) if beats else math.nan
    return out


def successes(df: pd.DataFrame, fraction: float = SUCCESS_FRACTION) -> pd.Series:
    """One boolean per run: did it succeed under the rule above?"""
    if df.empty:
        return pd.Series([], dtype=bool)
    limits = thresholds(df, fraction)
    limit = df["task"].map(limits).astype(float)
    higher = df["metric"].map(lambda m: higher_is_better(str(m))).astype(bool)
    value = df["value"].astype(float)
    good = np.where(higher, value >= limit, value <= limit)  # NaN compares False: no success
    return (
        pd.Series(good, index=df.index) & df["usable"].astype(bool) & ~df["diverged"].astype(bool)
    )


def max_stable_lr(lrs: list[float], ok: list[bool]) -> float:
    """Largest LR L such that every LR from the first success up to L succeeded; NaN
    ('none') if none succeeded. Leading failures are LRs too small for the budget."""
    best = math.nan
    for lr, good in sorted(zip(lrs, ok, strict=True)):
        if good:
            best = lr
        elif not math.isnan(best):
            break
    return best


def per_seed(df: pd.DataFrame, fraction: float = SUCCESS_FRACTION) -> pd.DataFrame:
    """One row per task x variant x depth (x setting) x seed with >= MIN_GRID LRs: its grid
    (the LRs it has runs at, any status) and its max stable LR. Repeated runs at one LR (a
    relaunch) count as a success when any of them succeeded."""
    if df.empty or "lr" not in df:
        return pd.DataFrame()
    runs = df.assign(success=successes(df, fraction))
    keys = [k for k in SEED_KEYS if k in runs]
    rows = []
    for key, g in runs[runs["lr"].notna()].groupby(keys, dropna=False):
        by_lr = g.groupby("lr")["success"].any()
        if len(by_lr) < MIN_GRID:
            continue
        row = dict(zip(keys, key, strict=True))
        row["lr_grid"] = tuple(float(x) for x in by_lr.index)
        row["max_lr"] = max_stable_lr(list(by_lr.index), list(by_lr.to_numpy()))
        rows.append(row)
    return pd.DataFrame(rows)


def _lower_median(values: list[float]) -> float:
    """Lower middle value with NaN ('none') ranked below every LR."""
    ranked = sorted(values, key=lambda v: -math.inf if math.isnan(v) else v)
    return ranked[(len(ranked) - 1) // 2]


def cell_keys(ps: pd.DataFrame) -> list[str]:
    """task, arch, depth, plus the settings that take more than one value."""
    extra = [k for k in SETTINGS if k in ps and ps[k].nunique(dropna=True) > 1]
    return ["task", "arch", "depth", *extra]


def frontier_table(df: pd.DataFrame, fraction: float = SUCCESS_FRACTION) -> pd.DataFrame:
    """Median and range over seeds of the max stable LR, per task x variant x depth.

    NaN in ``max_lr_*`` means 'none'; ``none_seeds`` counts the seeds without any success.
    """
    ps = per_seed(df, fraction)
    if ps.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = cell_keys(ps)
    rows = []
    for key, g in ps.groupby(keys, dropna=False, sort=True):
        lrs = [float(v) for v in g["max_lr"]]
        found = [v for v in lrs if not math.isnan(v)]
        row = dict(zip(keys, key, strict=True))
        row.update(
            {
                "seeds": int(g["seed"].nunique()),
                "lr_grid": tuple(sorted({lr for grid in g["lr_grid"] for lr in grid})),
                "max_lr_median": _lower_median(lrs),
                "max_lr_low": min(found) if len(found) == len(lrs) else math.nan,
                "max_lr_high": max(found) if found else math.nan,
                "none_seeds": len(lrs) - len(found),
            }
        )
        rows.append(row)
    cols = COLUMNS[:3] + keys[3:] + COLUMNS[3:]
    return pd.DataFrame(rows)[cols]


def lr_text(lr: float, grid: tuple[float, ...]) -> str:
    """An LR for a table: 'none' for NaN, '≥' for the top of the grid (a lower bound)."""
    if math.isnan(lr):
        return "none"
    return f"≥{lr:g}" if grid and lr >= max(grid) else f"{lr:g}"


def frontier_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and string rows of ``frontier_table`` for the HTML and Markdown reports."""
    if table.empty:
        return [], []
    extra = [c for c in table.columns if c in SETTINGS]
    head = ["task", "variant", "depth", *extra, "max stable LR (median)", "range over seeds",
            "seeds", "seeds with none", "LR grid"]  # fmt: skip
    rows = []
    for r in table.to_dict("records"):
        grid = tuple(r["lr_grid"])
        low, high = lr_text(r["max_lr_low"], grid), lr_text(r["max_lr_high"], grid)
        rows.append(
            [str(r["task"]), str(r["arch"]), f"{r['depth']:g}"]
            + [f"{r[k]:g}" for k in extra]
            + [
                lr_text(r["max_lr_median"], grid),
                low if low == high else f"{low} – {high}",
                str(r["seeds"]),
                str(r["none_seeds"]),
                ", ".join(f"{x:g}" for x in grid),
            ]
        )
    return head, rows
