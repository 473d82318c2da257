"""Claims (o)-(q): the seed article's statements about training itself (§3.3): residual
connections speed up convergence; LayerNorm reduces overfitting; LayerNorm keeps the
distribution of the layers' inputs stable during training."""

from __future__ import annotations

import math

import pandas as pd

from resnorm.report.analysis.table import steps_to_target
from resnorm.report.claims.article import ARTICLE, UNSTATED
from resnorm.report.claims.claim import HERE, Claim
from resnorm.report.claims.needs import Cell
from resnorm.report.claims.rules import (
    PAIR_KEYS,
    Context,
    Finding,
    compare,
    describe,
    fill,
)

REACH = 0.5  # the target: half the way from chance to the reference's worst seed


def _steps(runs: pd.DataFrame, target: float, higher: bool) -> pd.DataFrame:
    """Steps to ``target`` per run; a run that never reaches it counts at its budget + 1: a
    lower bound on its true value, so a gap between variants is understated, never made up."""
    runs = runs.copy()
    reached = [steps_to_target(c, target, higher) for c in runs["val_curve"]]
    runs["steps"] = pd.Series(reached, index=runs.index, dtype=float)
    runs["steps"] = (runs["max_steps"] + 1).where(runs["steps"].isna(), runs["steps"])
    return runs


def _target(ctx: Context, ref: pd.DataFrame) -> float:
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


def claim_o(ctx: Context) -> Finding:
    f = CLAIM_O.finding(
        ctx,
        f"Steps to target (the first validation step at which a run reaches "
        f"{REACH:.0%} of the way from chance to the best validation score of pre_ln's worst "
        "seed at that setting; a run that never does counts at its budget + 1) of "
        "no_residual − pre_ln, the same block with the skip path off vs on, paired by "
        "setting and seed. Supported iff it is better (> 0 by at least 50 steps, one "
        "validation interval; one-sided t-test, Holm).",
        unit="Δ steps to target (off − on)",
    )
    setting = [k for k in PAIR_KEYS if k != "seed"]
    frames = []
    on_all = ctx.arm("pre_ln")
    for key, on in on_all.groupby(setting) if len(on_all) else ():
        off = ctx.arm("no_residual", **dict(zip(setting, key, strict=True)))
        target = _target(ctx, on)
        frames += [_steps(on, target, ctx.sign > 0), _steps(off, target, ctx.sign > 0)]
        f.details.append(
            "target at "
            + ", ".join(f"{k}={v:g}" for k, v in zip(setting, key, strict=True))
            + f": {ctx.metric.replace('test/', 'val/')} {target:.4g}"
        )
    runs = pd.concat(frames) if frames else ctx.runs.iloc[0:0].assign(steps=[])
    est, seeds = compare(
        runs[runs["arch"] == "no_residual"], runs[runs["arch"] == "pre_ln"], "steps", PAIR_KEYS
    )
    part = CLAIM_O.probe_part("no_residual − pre_ln", est, seeds, "steps_to_target")
    f = fill(f, [part], ctx)
    f.untestable = ctx.learned(on_all)
    return f


CLAIM_O = Claim(
    "o",
    "Residual connections speed up convergence",
    ARTICLE,
    needs=(Cell("pre_ln"), Cell("no_residual")),
    test=claim_o,
    paper=UNSTATED,
    probes=("steps_to_target",),
)


def _no_norm_vs_pre_ln(ctx: Context, claim: Claim, f: Finding, column: str, name: str) -> Finding:
    """One part: ``column`` of no_norm − pre_ln (the residual stack without vs with
    LayerNorm), paired by setting and seed; pre_ln must have learned the task."""
    off, on = ctx.arm("no_norm"), ctx.arm("pre_ln")
    est, seeds = compare(off, on, column)
    f = fill(f, [claim.probe_part(f"{name} no_norm − pre_ln", est, seeds, column)], ctx)
    f.untestable = ctx.learned(on)
    return f


def claim_p(ctx: Context) -> Finding:
    f = CLAIM_P.finding(
        ctx,
        "Generalisation gap = test loss − final training loss (mean of the last 5 logged "
        "batches), no_norm − pre_ln, the same residual stack without vs with LayerNorm, "
        "paired by setting and seed. Supported iff it is better (> 0 by at least 0.02 "
        "nats; one-sided t-test, Holm). The runs are compared at the same step budget, "
        "not at matched training loss: the final training losses are reported alongside. "
        "Diverged runs are left out.",
        unit="Δ gap (nats, no_norm − pre_ln)",
    )
    train, seeds = compare(ctx.arm("no_norm"), ctx.arm("pre_ln"), "final_train_loss")
    f.details = [describe("final train loss no_norm − pre_ln", train, seeds)]
    return _no_norm_vs_pre_ln(ctx, CLAIM_P, f, "gen_gap", "gap")


CLAIM_P = Claim(
    "p",
    "LayerNorm reduces overfitting",
    ARTICLE,
    needs=(Cell("pre_ln"), Cell("no_norm")),
    test=claim_p,
    paper="The seed article states it without a setting; " + HERE + ": 200 steps may be too "
    "few to overfit, and the gap is compared at equal steps, not at equal training loss.",
    probes=("gen_gap",),
)


def claim_q(ctx: Context) -> Finding:
    f = CLAIM_Q.finding(
        ctx,
        "Drift = mean over layers of |ln(RMS of the residual stream at the end / at init)| "
        "(fixed probe batch), no_norm − pre_ln, paired by setting and seed, diverged runs "
        "left out. Supported iff "
        "it is better (> 0 by at least 0.1, a ~10% change of scale; one-sided t-test, Holm).",
        unit="Δ drift (no_norm − pre_ln)",
    )
    return _no_norm_vs_pre_ln(ctx, CLAIM_Q, f, "rms_drift", "drift")


CLAIM_Q = Claim(
    "q",
    "LayerNorm keeps the distribution of the layers' inputs stable during training",
    ARTICLE,
    needs=(Cell("pre_ln"), Cell("no_norm")),
    test=claim_q,
    paper=UNSTATED,
    probes=("rms_drift",),
)
