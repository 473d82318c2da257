"""The trainability frontier: per task x architecture x setting (``cells``: every key but
lr and seed) x depth, the largest learning rate at which training still succeeds.

A run *succeeds* when it is usable (completed or diverged, not failed/running/pruned), did
not diverge, and its headline score reaches its task's bar (``frontier_bar``): a share of the
gap from chance to a reference score declared per task in advance (for bpc, lower is better:
the gap runs from chance bpc down to the reference). The bar never depends on the other
variants of the report: adding a better one moves no one's frontier (the one exception, a
report without reference runs, is labelled as such). Per seed, the max
stable LR is the largest grid LR ``L`` such that every grid LR from the smallest that
succeeded up to ``L`` succeeded: a failure ends the frontier even when a larger LR succeeds
again. Failures below the first success do not end it: an LR too small to reach the bar
within the budget says how slow training is, not where it breaks. No success at any LR:
"none" (NaN here). Over seeds: the median (the lower middle value for an even number of
seeds, so it is always a grid LR; "none" ranks below every LR) and the range. The
resolution is the grid's step: the study's grid is half-decade (1e-4, 3e-4, 1e-3, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from resnorm.report.analysis.cells import (
    SETTING_KEYS,
    cell_keys,
    key_values,
    shown_keys,
    value_text,
)
from resnorm.report.analysis.frontier_bar import (
    FIXED,
    KIND_TEXT,
    REPORT_REFERENCE,
    SUCCESS_SHARE,
    Bar,
    Limit,
    limits,
)
from resnorm.report.analysis.table import higher_is_better

# A seed with fewer LRs than this says nothing about where training breaks, unless its runs
# bracket the frontier (``bracketed``: what the frontier search leaves).
MIN_GRID = 3
# Settings a frontier cell may have beyond task, arch and depth (columns when they vary).
SETTINGS = tuple(k for k in SETTING_KEYS if k not in ("depth", "lr"))
COLUMNS = ["task", "arch", "depth", "seeds", "lr_grid", "max_lr_median", "max_lr_low",
           "max_lr_high", "none_seeds", "bar", "bar_text", "bar_kind"]  # fmt: skip


def definition(share: float = SUCCESS_SHARE) -> str:
    """The rule in words, for the report and the figure caption."""
    return (
        "Trainability frontier: the largest learning rate at which training succeeds. A run "
        "succeeds when it finished (completed or diverged), did not diverge, and its test "
        f"score reaches its task's bar: by default {share:.0%} of the gap from chance to the "
        "score of a reference variant (pre_ln) at its best LR, fixed per task in advance "
        "(conf/study/frontier.yaml, study.frontier_bars); where no score was fixed, the bar "
        "comes from this report's reference cell at its best LR and is marked 'not fixed "
        "in advance' (without reference runs: the report's best cell, marked as a bar that "
        "moves when a better variant is added; bpc: the gap runs from chance bpc down). "
        "Fixed or from the reference, the bar never depends on the other variants. "
        "Per seed, the max stable LR is the "
        "largest grid LR L such that every grid LR from the smallest successful one up to L "
        "succeeded (a failure in the middle of the grid ends it; failures below the first "
        "success, LRs too small for the budget, do not); 'none': no LR succeeded. Median over "
        "seeds (lower middle value for an even count), range = min..max over seeds; "
        "'≥' marks the largest LR of the grid (the frontier may lie beyond it); resolution: "
        "one grid step (half a decade on the study's grid). A cell is a whole architecture "
        "and setting (heads, width, warmup, budget, ... are never pooled). "
        f"Only seeds with ≥ {MIN_GRID} learning rates count, or whose runs bracket their "
        "max stable LR (the next grid LR above it ran and failed), as the frontier search "
        "(resnorm plan --study frontier) leaves them."
    )


def thresholds(df: pd.DataFrame, bars: Mapping[str, Bar] | None = None) -> dict[str, float]:
    """Per task with a bar, the score a run must reach (NaN: the reference does not beat
    chance, so nothing succeeds). ``bars``: per task; None reads the task configs."""
    return {task: lim.score for task, lim in limits(df, bars).items()}


def successes(df: pd.DataFrame, bars: Mapping[str, Bar] | None = None) -> pd.Series:
    """One boolean per run: did it succeed under the rule above?"""
    if df.empty:
        return pd.Series([], dtype=bool)
    limit = df["task"].map(thresholds(df, bars)).astype(float)
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


def seed_keys(df: pd.DataFrame) -> list[str]:
    """One seed's LR grid: the whole cell key but lr, and the seed."""
    return [*cell_keys(df, without=("lr",)), *(["seed"] if "seed" in df else [])]


def per_seed(
    df: pd.DataFrame,
    bars: Mapping[str, Bar] | None = None,
    lims: Mapping[str, Limit] | None = None,
) -> pd.DataFrame:
    """One row per cell (task, arch, every setting but lr) x seed with >= MIN_GRID LRs, for
    tasks with a bar: its grid (the LRs it has runs at, any status) and its max stable LR.
    Repeated runs at one LR (a relaunch) count as a success when any of them succeeded."""
    if df.empty or "lr" not in df:
        return pd.DataFrame()
    lims = limits(df, bars) if lims is None else lims
    runs = df.assign(success=successes(df, {t: lim.bar for t, lim in lims.items()}))
    runs = runs[runs["lr"].notna() & runs["task"].isin(list(lims))]
    keys = seed_keys(runs)
    # the cell's grid (every LR some seed ran) is where a search's bracket lies
    cell = [k for k in keys if k != "seed"]
    runs = runs.assign(_cell=runs.groupby(cell, dropna=False).ngroup()) if len(runs) else runs
    grids = (
        {c: sorted(set(g.astype(float))) for c, g in runs.groupby("_cell")["lr"]}
        if len(runs)
        else {}
    )
    rows = []
    for key, g in runs.groupby(keys, dropna=False) if len(runs) else ():
        by_lr = g.groupby("lr")["success"].any()
        lrs, ok = [float(x) for x in by_lr.index], [bool(x) for x in by_lr.to_numpy()]
        best = max_stable_lr(lrs, ok)
        grid = grids[g["_cell"].iloc[0]]
        if len(lrs) < MIN_GRID and not bracketed(dict(zip(lrs, ok, strict=True)), grid, best):
            continue
        row = key_values(keys, key)
        row["lr_grid"] = tuple(lrs)
        row["max_lr"] = best
        rows.append(row)
    return pd.DataFrame(rows)


def bracketed(tested: Mapping[float, bool], grid: list[float], best: float) -> bool:
    """Whether a seed's runs pin its max stable LR ``best`` to one step of the cell's
    ``grid`` (every LR some seed of the cell ran), as the frontier search leaves them: the
    next grid LR above ``best`` ran and failed. ('≥ the top' and 'none' need MIN_GRID LRs.)"""
    above = [lr for lr in grid if lr > best]
    return not math.isnan(best) and bool(above) and tested.get(above[0]) is False


def _lower_median(values: list[float]) -> float:
    """Lower middle value with NaN ('none') ranked below every LR."""
    ranked = sorted(values, key=lambda v: -math.inf if math.isnan(v) else v)
    return ranked[(len(ranked) - 1) // 2]


def frontier_table(df: pd.DataFrame, bars: Mapping[str, Bar] | None = None) -> pd.DataFrame:
    """Median and range over seeds of the max stable LR, per cell (task x arch x depth x
    every other setting but lr; those that vary become columns), with the task's bar.

    NaN in ``max_lr_*`` means 'none'; ``none_seeds`` counts the seeds without any success.
    """
    lims = limits(df, bars) if len(df) else {}
    ps = per_seed(df, lims=lims)
    if ps.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = shown_keys(ps, without=("lr",))
    rows = []
    for key, g in ps.groupby(keys, dropna=False, sort=True):
        lrs = [float(v) for v in g["max_lr"]]
        found = [v for v in lrs if not math.isnan(v)]
        row = key_values(keys, key)
        lim = lims[str(row["task"])]
        row.update(
            {
                "seeds": int(g["seed"].nunique()),
                "lr_grid": tuple(sorted({lr for grid in g["lr_grid"] for lr in grid})),
                "max_lr_median": _lower_median(lrs),
                "max_lr_low": min(found) if len(found) == len(lrs) else math.nan,
                "max_lr_high": max(found) if found else math.nan,
                "none_seeds": len(lrs) - len(found),
                "bar": lim.score,
                "bar_text": lim.text(),
                "bar_kind": lim.kind,
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


def bar_text(bar: float, kind: str) -> str:
    """The bar for a table cell; the whole derivation is in the figure caption."""
    if math.isnan(bar):
        return "– (the reference does not beat chance: nothing succeeds)"
    source = {FIXED: "", REPORT_REFERENCE: "from this report's reference, "}.get(
        kind, "from this report's best cell, "
    )
    return f"{bar:.4g} ({source}{KIND_TEXT[kind]})"


def frontier_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and string rows of ``frontier_table`` for the HTML and Markdown reports."""
    if table.empty:
        return [], []
    extra = [c for c in table.columns if c in SETTINGS]
    head = ["task", "variant", "depth", *extra, "max stable LR (median)", "range over seeds",
            "seeds", "seeds with none", "LR grid", "success bar"]  # fmt: skip
    rows = []
    for r in table.to_dict("records"):
        grid = tuple(r["lr_grid"])
        low, high = lr_text(r["max_lr_low"], grid), lr_text(r["max_lr_high"], grid)
        rows.append(
            [str(r["task"]), str(r["arch"]), f"{r['depth']:g}"]
            + [value_text(r[k]) for k in extra]
            + [
                lr_text(r["max_lr_median"], grid),
                low if low == high else f"{low} – {high}",
                str(r["seeds"]),
                str(r["none_seeds"]),
                ", ".join(f"{x:g}" for x in grid),
                bar_text(r["bar"], str(r["bar_kind"])),
            ]
        )
    return head, rows
