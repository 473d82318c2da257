"""Claim (o), the seed article's "residual connections speed up convergence": time to a
validation target as right-censored data, one part per depth.

A run that never reaches the target within its step budget τ has no steps-to-target to
average: it is right-censored at τ. The comparison is therefore of the restricted mean time
to target (RMST, Royston & Parmar 2013), E[min(T, τ)]: each run's min(T, τ) is observed
exactly (every run is followed to τ), so the paired per-seed differences of it are real
observations and the usual one-interval decision applies; a censored run is never given a
made-up time beyond τ. The share of runs that reach the target and a log-rank test are
reported beside it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from resnorm.report.analysis.table import steps_to_target
from resnorm.report.claims.article import ARTICLE, UNSTATED
from resnorm.report.claims.claim import Claim
from resnorm.report.claims.needs import BASE_LR, BASE_WARMUP, DEEP, HEADS, SHALLOW, Cell
from resnorm.report.claims.rules import PAIR_KEYS, Context, Finding, compare, fill
from resnorm.report.claims.verdicts import Part

REACH = 0.5  # the target: half the way from chance to the reference's worst seed
DEPTHS = (DEEP, SHALLOW)  # one part each; the deepest is the headline
SETTING = [k for k in PAIR_KEYS if k != "seed"]


def restricted_steps(runs: pd.DataFrame, target: float, higher: bool) -> pd.DataFrame:
    """Per run: ``reached`` (the target within the budget) and ``restricted`` = min(steps to
    target, τ) with τ = the run's step budget; a run that never reaches it is censored at τ,
    which is its exact restricted time, not an estimate of its steps to target."""
    runs = runs.copy()
    steps = [steps_to_target(c, target, higher) for c in runs["val_curve"]]
    steps = pd.Series(steps, index=runs.index, dtype=float)
    tau = runs["max_steps"].astype(float)
    runs["reached"] = steps.notna() & (steps <= tau)
    runs["restricted"] = steps.where(runs["reached"], tau).clip(upper=tau)
    return runs


def target(ctx: Context, ref: pd.DataFrame) -> float:
    """REACH of the way from chance to the best validation score of the reference's worst
    seed, so that every reference seed reaches it."""
    best = [
        (c.iloc[:, 1].max() if ctx.sign > 0 else c.iloc[:, 1].min())
        for c in ref["val_curve"]
        if isinstance(c, pd.DataFrame) and len(c)
    ]
    if not best or ref["chance"].dropna().empty:
        return math.nan
    worst = min(best) if ctx.sign > 0 else max(best)
    chance = float(ref["chance"].dropna().iloc[0])
    return chance + REACH * (worst - chance)


def _base(ctx: Context, arch: str, depth: int) -> pd.DataFrame:
    """The claim's cell: ``arch`` at ``depth`` and the base lr, warmup and heads (an lr grid
    of other claims would mix in settings where both arms fail alike)."""
    return ctx.arm(arch, depth=depth, lr=BASE_LR, warmup_steps=BASE_WARMUP, heads=HEADS)


def logrank_p(off: pd.DataFrame, on: pd.DataFrame) -> float:
    """Two-sided log-rank p on the runs' times to target, censored at τ (NaN if it cannot
    be computed: too few runs, or no run of either arm reaches the target)."""
    if len(off) < 2 or len(on) < 2 or not (off["reached"].any() or on["reached"].any()):
        return math.nan

    def data(g: pd.DataFrame) -> sps.CensoredData:
        t = g["restricted"].to_numpy(float)
        hit = g["reached"].to_numpy(bool)
        return sps.CensoredData(uncensored=t[hit], right=t[~hit])

    with np.errstate(all="ignore"):
        return float(sps.logrank(data(off), data(on)).pvalue)


def _depth(ctx: Context, depth: int) -> tuple[Part, list[str], pd.DataFrame]:
    """The part at ``depth``, its detail lines, and the reference runs it judged."""
    on_all, frames, lines = _base(ctx, "pre_ln", depth), [], []
    for key, on in on_all.groupby(SETTING) if len(on_all) else ():
        off = _base(ctx, "no_residual", depth)
        off = off.merge(pd.DataFrame([key], columns=SETTING), on=SETTING)
        tgt = target(ctx, on)
        on, off = (restricted_steps(g, tgt, ctx.sign > 0) for g in (on, off))
        frames += [on, off]
        where = ", ".join(f"{k}={v:g}" for k, v in zip(SETTING, key, strict=True))
        lines.append(
            f"depth {depth} at {where}: target {ctx.metric.replace('test/', 'val/')} "
            f"{tgt:.4g}; reached within τ={key[SETTING.index('max_steps')]:g} steps: pre_ln "
            f"{int(on['reached'].sum())}/{len(on)}, no_residual "
            f"{int(off['reached'].sum())}/{len(off)} (the others censored at τ); "
            f"log-rank p={logrank_p(off, on):.3g} (two-sided, unpaired; not tested)"
        )
    runs = pd.concat(frames) if frames else ctx.runs.iloc[0:0].assign(restricted=[])
    est, seeds = compare(
        runs[runs["arch"] == "no_residual"], runs[runs["arch"] == "pre_ln"], "restricted"
    )
    part = CLAIM_O.probe_part(
        f"depth {depth}: RMST no_residual − pre_ln", est, seeds, "steps_to_target"
    )
    return part, lines, on_all


def claim_o(ctx: Context) -> Finding:
    f = CLAIM_O.finding(
        ctx,
        f"Restricted mean time to target (RMST up to the step budget τ) of no_residual − "
        f"pre_ln, the same block with the skip path off vs on, at lr {BASE_LR:g}, paired by "
        f"setting and seed; one part per depth: depth {DEEP} (the headline) and depth "
        f"{SHALLOW}, both required. Time to target: the first validation step at which a "
        f"run reaches {REACH:.0%} of the way from chance to the best validation score of "
        "pre_ln's worst seed at that setting. A run that never reaches it is right-censored "
        "at τ and contributes min(T, τ) = τ, its exact restricted time (never τ + 1 or any "
        "other made-up steps to target); failed runs are kept, as runs that never reach "
        "the target. Each part is decided from one (1−α) interval of the paired "
        "differences: better iff it lies above 0 with a mean ≥ 50 steps (one validation "
        "interval); parts are Holm-adjusted when (o) is a primary claim, else exploratory. "
        "Reported per depth, not tested: how many runs reached the target, and a log-rank "
        "test.",
        unit="Δ RMST to target (steps, off − on)",
    )
    parts, lines, refs = [], [], []
    for depth in DEPTHS:
        part, more, on = _depth(ctx, depth)
        parts.append(part)
        lines += more
        refs.append(on)
    f = fill(f, parts, ctx)
    f.details = lines
    f.untestable = ctx.learned(pd.concat(refs))
    return f


CLAIM_O = Claim(
    "o",
    "Residual connections speed up convergence",
    ARTICLE,
    needs=tuple(Cell(a, depth=d) for d in DEPTHS for a in ("pre_ln", "no_residual")),
    test=claim_o,
    paper=UNSTATED,
    probes=("steps_to_target",),
)
