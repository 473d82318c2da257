"""Budget check: has the reference model's validation curve flattened by the end of its
step budget?

Criterion (also stated in the report and docs/findings.md). The reference is ``pre_ln`` at
the base cell of the findings study (depth 8, lr 1e-3, warmup 50, 4 heads). Per seed, its
*last-quarter gain* is the validation score at the last validation minus the score at the
validation nearest 75% of the budget (``max_steps``), oriented so improvement is positive
(accuracy up, bits per char down). Over seeds: the mean and its 95% t-interval.
"Flattened" iff the interval's upper end is below the findings' minimum effect for the
metric (accuracy 0.01, bpc 0.02): whatever the last quarter still adds is smaller than any
difference a verdict counts. Otherwise "still improving". "Not checkable" when fewer than
MIN_SEEDS seeds have a curve of at least MIN_POINTS validation points (diverged runs are left
out: their curve stops where they blew up). A curve flat at chance is "flattened" too:
whether the reference learned the task is the findings' "not testable" rule, not this one.

The same check runs at pre_ln's own best learning rate where the report has an LR grid for
it (at least MIN_GRID rates with MIN_SEEDS seeds each at the base depth and warmup): the rate
with the best mean validation score over seeds (``val_best``; a diverged run scores chance;
ties go to the smaller rate), as claims (d) and (g) choose it. A faster rate may flatten
sooner. A budget check is per task, width and step budget: runs at another budget are
another row.

It lives with the claims because it judges against their base cell (``needs``) and minimum
effects (``rules``): the report's packages import only the ones before them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from resnorm.report.analysis.stats import NONE, Estimate, mean_ci
from resnorm.report.claims.needs import BASE_LR, BASE_WARMUP, DEEP, HEADS
from resnorm.report.claims.rules import MIN_EFFECTS
from resnorm.report.sources.rows import usable

REFERENCE = "pre_ln"
FRACTION = 0.75  # the last quarter: from the validation nearest 75% of the budget to the end
MIN_SEEDS = 3
MIN_POINTS = 3
MIN_GRID = 3  # fewer pre_ln learning rates than this is no grid to pick a best rate from
FLATTENED, IMPROVING, NOT_CHECKABLE = "flattened", "still improving", "not checkable"
GROUP = ("task", "dim", "max_steps")  # one budget check per task, width and budget
VAL_BEST = {"test/acc": "m_val_best/acc", "test/bpc": "m_val_best/bpc"}


def criterion() -> str:
    """The rule in words, for the report."""
    effects = ", ".join(f"{m.split('/')[-1]} {v:g}" for m, v in MIN_EFFECTS.items())
    return (
        f"Budget check: {REFERENCE} at depth {DEEP}, lr {BASE_LR:g}, warmup {BASE_WARMUP} "
        "(and at its own best lr where the report has an LR grid for it, chosen on mean "
        "val_best over seeds). Per seed, the last-quarter gain = validation score at the "
        f"last validation − at the validation nearest {FRACTION:.0%} of the step budget, "
        "oriented so improvement is > 0 (accuracy up, bpc down); mean and 95% t-interval "
        "over seeds. Flattened iff the interval's upper end is below the findings' minimum "
        f"effect ({effects}); otherwise still improving. Not checkable with fewer than "
        f"{MIN_SEEDS} seeds of ≥ {MIN_POINTS} validation points (diverged runs left out). "
        "A curve flat at chance is flattened too: whether the model learned the task is the "
        "findings' 'not testable' rule."
    )


@dataclass(frozen=True)
class Check:
    """The budget check of one group of reference runs (one learning rate)."""

    verdict: str
    lr: float
    threshold: float
    est: Estimate = NONE
    seeds: int = 0
    window: tuple[float, float] | None = None  # the logged (from, to) validation steps
    reason: str = ""  # why not checkable

    def text(self) -> str:
        if self.verdict == NOT_CHECKABLE:
            return f"{NOT_CHECKABLE}: {self.reason}"
        span = f"; val steps {self.window[0]:g}→{self.window[1]:g}" if self.window else ""
        rel = "<" if self.verdict == FLATTENED else "≥"
        return (
            f"{self.verdict}: {self.est.text('{:.3g}')}, upper {rel} {self.threshold:g} "
            f"({self.seeds} seeds{span})"
        )


@dataclass(frozen=True)
class BudgetRow:
    """One task × width × budget: the check at the base lr and at pre_ln's best lr."""

    task: str
    dim: float
    budget: float
    metric: str
    base: Check
    best: Check | None  # None: no LR grid for pre_ln in the report


def sign_of(metric: str) -> int:
    """+1 when higher is better (accuracy), -1 for bits per char."""
    return -1 if str(metric).endswith("bpc") else 1


def quarter_gain(
    curve: pd.DataFrame | None, budget: float, sign: int
) -> tuple[float, tuple[float, float] | None]:
    """A run's last-quarter gain (oriented) and the (from, to) steps it spans; NaN when the
    curve has fewer than MIN_POINTS points. ``curve``: columns step and the val metric."""
    if curve is None or len(curve) < MIN_POINTS:
        return math.nan, None
    c = curve.sort_values("step")
    steps = c["step"].to_numpy(dtype=float)
    values = c[c.columns[1]].to_numpy(dtype=float)
    end = budget if math.isfinite(budget) and budget > 0 else steps[-1]
    i = int(np.argmin(np.abs(steps[:-1] - FRACTION * end)))  # ties: the earlier point
    return float(sign * (values[-1] - values[i])), (float(steps[i]), float(steps[-1]))


def check(runs: pd.DataFrame, lr: float, metric: str) -> Check:
    """The budget check of reference runs at one lr (one task, width and budget)."""
    threshold = float(MIN_EFFECTS.get(metric, math.nan))
    ok = runs[~runs["diverged"].astype(bool)] if len(runs) else runs
    left_out = len(runs) - len(ok)
    if ok.empty:
        why = f"{left_out} diverged" if left_out else "none"
        return Check(NOT_CHECKABLE, lr, threshold, reason=f"no usable run ({why})")
    budget = ok["max_steps"].astype(float)
    gains = [
        quarter_gain(c, b, sign_of(metric)) for c, b in zip(ok["val_curve"], budget, strict=True)
    ]
    per_run = pd.DataFrame(
        {
            "seed": ok["seed"].to_numpy(),
            "gain": [g for g, _ in gains],
            "window": [w for _, w in gains],
        }
    )
    per_run = per_run[np.isfinite(per_run["gain"].astype(float))]
    per_seed = per_run.groupby("seed")["gain"].mean()  # a repeated seed is one replicate
    if len(per_seed) < MIN_SEEDS:
        extra = f"; {left_out} diverged left out" if left_out else ""
        return Check(
            NOT_CHECKABLE,
            lr,
            threshold,
            seeds=len(per_seed),
            reason=f"{len(per_seed)} seed(s) with ≥ {MIN_POINTS} validation points, needs "
            f"{MIN_SEEDS}{extra}",
        )
    est = mean_ci(per_seed)
    flat = est.high is not None and est.high < threshold
    window = per_run["window"].value_counts().idxmax()  # the usual window, for the reader
    return Check(FLATTENED if flat else IMPROVING, lr, threshold, est, len(per_seed), window)


def _base_cell(runs: pd.DataFrame) -> pd.DataFrame:
    """Usable reference runs at the base depth, warmup and heads (any lr)."""
    ok = usable(runs)
    if ok.empty:
        return ok
    heads = ok["heads"].astype(float) if "heads" in ok else pd.Series(math.nan, ok.index)
    at = (
        (ok["arch"] == REFERENCE)
        & np.isclose(ok["depth"].astype(float), DEEP)
        & np.isclose(ok["warmup_steps"].astype(float), BASE_WARMUP)
        & (heads.isna() | np.isclose(heads, HEADS))
    )
    return ok[at]


def _val_score(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Each run's validation score for choosing an lr: val_best, chance if it diverged."""
    col = VAL_BEST.get(metric, "")
    val = runs[col].astype(float) if col in runs else pd.Series(math.nan, index=runs.index)
    return val.where(~runs["diverged"].astype(bool), runs["chance"].astype(float))


def best_lr(runs: pd.DataFrame, metric: str) -> float | None:
    """pre_ln's best lr on validation among rates with MIN_SEEDS scored seeds; None when
    fewer than MIN_GRID rates qualify. ``runs``: the base-cell runs of one group."""
    if runs.empty:
        return None
    scored = runs.assign(_val=_val_score(runs, metric), _lr=runs["lr"].astype(float).round(12))
    scored = scored[np.isfinite(scored["_val"])]
    seeds = scored.groupby("_lr")["seed"].nunique()
    lrs = seeds[seeds >= MIN_SEEDS].index
    if len(lrs) < MIN_GRID:
        return None
    means = scored[scored["_lr"].isin(lrs)].groupby("_lr")["_val"].mean()
    sign = sign_of(metric)
    return float(max(sorted(means.index), key=lambda lr: (sign * means[lr], -lr)))


def budget_rows(df: pd.DataFrame) -> list[BudgetRow]:
    """The budget check of every task × width × budget that has reference runs."""
    ref = _base_cell(df)
    rows = []
    for (task, dim, budget), g in ref.groupby(list(GROUP), dropna=False, sort=True):
        metric = str(g["metric"].iloc[0])
        at_base = g[np.isclose(g["lr"].astype(float), BASE_LR)]
        if at_base.empty:
            threshold = float(MIN_EFFECTS.get(metric, math.nan))
            base = Check(NOT_CHECKABLE, BASE_LR, threshold, reason=f"no run at lr {BASE_LR:g}")
        else:
            base = check(at_base, BASE_LR, metric)
        lr = best_lr(g, metric)
        best = None
        if lr is not None:
            best = check(g[np.isclose(g["lr"].astype(float), lr)], lr, metric)
        rows.append(BudgetRow(str(task), float(dim), float(budget), metric, base, best))
    return rows
