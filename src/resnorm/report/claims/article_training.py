"""Claims (o)-(r): the seed article's statements about training itself (§3.3): residual
connections speed up convergence; LayerNorm reduces overfitting; LayerNorm keeps the
distribution of the layers' inputs stable during training; together they let models grow
deeper and wider."""

from __future__ import annotations

import math

import pandas as pd

from resnorm.report.analysis.stats import pair
from resnorm.report.analysis.table import steps_to_target
from resnorm.report.claims.article import ARTICLE, UNSTATED
from resnorm.report.claims.claim import HERE, Claim
from resnorm.report.claims.needs import DEEP, DIM, SHALLOW, Cell
from resnorm.report.claims.rules import (
    PAIR_KEYS,
    Context,
    Finding,
    compare,
    describe,
    fill,
    oriented,
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
    paper="The seed article states it without a setting; " + HERE + ": a few hundred "
    "steps may be too few to overfit, and the gap is compared at equal steps, not at equal "
    "training loss.",
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


NARROW = DIM // 2  # claim (r)'s narrower cells: width 32 against the base width 64


def _advantage(ctx: Context, depth: float, dim: float) -> pd.DataFrame:
    """Per setting and seed at (depth, width): score(pre_ln) − score(plain), the block with
    residual and LayerNorm against the block with neither, oriented so that > 0 means
    pre_ln is better."""
    p = pair(ctx.arm("pre_ln", dim, depth=depth), ctx.arm("plain", dim, depth=depth),
             list(PAIR_KEYS), "value")  # fmt: skip
    p["gap"] = p["diff"] * ctx.sign
    return p


def claim_r(ctx: Context) -> Finding:
    f = CLAIM_R.finding(
        ctx,
        f"Advantage = score(pre_ln) − score(plain) (residual + LayerNorm vs neither), paired "
        f"by setting and seed, oriented so that > 0 means pre_ln is better. Two parts, each "
        f"an interaction per seed: (1) deeper: the advantage at depth {DEEP} − at depth "
        f"{SHALLOW} (width {DIM}); (2) wider: the advantage at width {DIM} − at width {NARROW} "
        f"(depth {DEEP}). Supported iff both are better (> 0 by the minimum effect; one-sided "
        f"t-tests, Holm).",
        unit=f"Δ advantage pre_ln − plain ({ctx.metric.split('/')[-1]}, > 0: grows)",
    )
    base = ctx.base_dim
    deep, shallow = _advantage(ctx, DEEP, base), _advantage(ctx, SHALLOW, base)
    narrow = _advantage(ctx, DEEP, NARROW) if base != NARROW else deep.iloc[0:0]
    deeper, s1 = compare(deep, shallow, "gap", tuple(k for k in PAIR_KEYS if k != "depth"))
    wider, s2 = compare(deep, narrow, "gap", tuple(k for k in PAIR_KEYS if k != "dim"))
    f.details = []
    for depth, dim in ((SHALLOW, base), (DEEP, NARROW), (DEEP, base)):
        est, seeds = compare(
            ctx.arm("pre_ln", dim, depth=depth), ctx.arm("plain", dim, depth=depth), "value"
        )
        f.details.append(
            describe(
                f"score pre_ln − plain at depth {depth:g}, width {dim:g} (> 0: pre_ln better)",
                oriented(est, ctx.sign),
                seeds,
            )
        )
    parts = [
        ctx.part(f"deeper: advantage at depth {DEEP} − depth {SHALLOW}", deeper, s1, score=False),
        ctx.part(f"wider: advantage at width {DIM} − width {NARROW}", wider, s2, score=False),
    ]
    f = fill(f, parts, ctx)
    # the reference at the deep settings judged (not pre_ln's whole lr grid at that depth)
    setting = [k for k in PAIR_KEYS if k != "seed"]
    judged = deep[setting].drop_duplicates()
    f.untestable = ctx.learned(ctx.arm("pre_ln", depth=DEEP).merge(judged, on=setting))
    return f


CLAIM_R = Claim(
    "r",
    "Residual connections and LayerNorm let models grow deeper and wider",
    ARTICLE,
    needs=tuple(
        Cell(a, depth=d, dim=m)
        for a in ("pre_ln", "plain")
        for d, m in ((DEEP, DIM), (SHALLOW, DIM), (DEEP, NARROW))
    ),
    test=claim_r,
    paper="The seed article states it without a setting; here: widths 32 vs 64 only, "
    "depths 2 vs 8, the task's own step budget, lr 1e-3, the embedded tasks.",
)
