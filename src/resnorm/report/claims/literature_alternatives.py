"""Claims (d), (e), (g), (h): what the literature says replaces or repairs a norm or the
skip path (ReZero, DeepNorm, DyT, RMSNorm) is as good as the standard block."""

from __future__ import annotations

import math

from resnorm.report.analysis.stats import Estimate
from resnorm.report.claims.needs import MIN_SEEDS
from resnorm.report.claims.rules import (
    DEEP_MIN,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    Context,
    Finding,
    combine,
    compare,
    describe,
    directional,
    equivalence,
    fill,
    no_deep,
    oriented,
    shared_deepest,
)


def _non_inferior(ctx: Context, est: Estimate, seeds: int) -> str:
    """Oriented CI lower bound above -margin: not worse than the reference by the margin."""
    est = oriented(est, ctx.sign)
    if seeds < MIN_SEEDS or not est.has_ci:
        return INCONCLUSIVE
    return SUPPORTED if est.low > -ctx.margin else NOT_SUPPORTED


def claim_d(ctx: Context) -> Finding:
    f = Finding(
        "d",
        "ReZero trains deep stacks without normalization",
        "Bachlechner et al. 2020",
        ctx.task,
        f"Non-inferiority at the deepest depth rezero and pre_ln share "
        f"(≥ {DEEP_MIN}): score(rezero) − score(pre_ln), paired by setting and seed. "
        f"Supported iff the 95% CI's worse end is above −margin "
        f"({ctx.margin:g} {ctx.metric}).",
        unit=ctx.delta,
    )
    deep = shared_deepest(ctx, "rezero", "pre_ln")
    if not deep >= DEEP_MIN:
        f.details = [no_deep("rezero", "pre_ln")]
        return fill(f, Estimate(math.nan, None, None, 0), INCONCLUSIVE, ctx, "d")
    rz = ctx.arm("rezero", depth=deep)
    est, seeds = compare(rz, ctx.arm("pre_ln", depth=deep), "value")
    vs_nn, s2 = compare(rz, ctx.arm("no_norm", depth=deep), "value")
    f.details = [
        describe(f"rezero − pre_ln at depth {deep:g}", est, seeds),
        describe(f"rezero − no_norm at depth {deep:g}", vs_nn, s2),
        f"rezero divergence rate: {rz['diverged'].mean():.2f} (n={len(rz)})",
    ]
    return fill(f, est, _non_inferior(ctx, est, seeds), ctx, "d")


def claim_e(ctx: Context) -> Finding:
    f = Finding(
        "e",
        "DeepNorm trains Post-LN deeper than plain Post-LN",
        "Wang et al. 2022",
        ctx.task,
        f"At the deepest depth both share (≥ {DEEP_MIN}): score(deepnorm) − "
        "score(post_ln), paired by setting and seed. Supported iff the 95% CI is above 0 "
        "(oriented: higher is better).",
        unit=ctx.delta,
    )
    deep = shared_deepest(ctx, "deepnorm", "post_ln")
    if not deep >= DEEP_MIN:
        f.details = [no_deep("deepnorm", "post_ln")]
        return fill(f, Estimate(math.nan, None, None, 0), INCONCLUSIVE, ctx, "e")
    dn, post = ctx.arm("deepnorm", depth=deep), ctx.arm("post_ln", depth=deep)
    est, seeds = compare(dn, post, "value")
    f.details = [
        describe(f"deepnorm − post_ln at depth {deep:g}", est, seeds),
        f"divergence rate deepnorm {dn['diverged'].mean():.2f}, "
        f"post_ln {post['diverged'].mean():.2f}",
    ]
    return fill(f, est, directional(oriented(est, ctx.sign), seeds), ctx, "e")


def _equivalence_claim(ctx: Context, f: Finding, arch: str, ref: str) -> tuple[Estimate, str]:
    est, seeds = compare(ctx.arm(arch), ctx.arm(ref), "value")
    f.details = [describe(f"{arch} − {ref}", est, seeds), f"margin ±{ctx.margin:g} {ctx.metric}"]
    return est, equivalence(est, seeds, ctx.margin)


def _equivalence_test(ctx: Context, arch: str, ref: str) -> str:
    return (
        f"Equivalence: score({arch}) − score({ref}), paired by setting and seed. Supported "
        f"iff the whole 95% CI lies within ±{ctx.margin:g} {ctx.metric} (the stated margin); "
        f"otherwise equivalence is not shown."
    )


def claim_g(ctx: Context) -> Finding:
    f = Finding(
        "g",
        "DyT (tanh) matches LayerNorm",
        "Zhu et al. 2025",
        ctx.task,
        _equivalence_test(ctx, "dyt_pre", "pre_ln"),
        unit=ctx.delta,
    )
    est, verdict = _equivalence_claim(ctx, f, "dyt_pre", "pre_ln")
    return fill(f, est, verdict, ctx, "g")


def claim_h(ctx: Context) -> Finding:
    f = Finding(
        "h",
        "RMSNorm matches LayerNorm and is cheaper",
        "Zhang & Sennrich 2019",
        ctx.task,
        _equivalence_test(ctx, "rmsnorm_pre", "pre_ln") + " Cheaper: training seconds per "
        "step (the run's step timer, summary throughput; else wall time / steps) rmsnorm − "
        "layernorm < 0 (95% CI, paired).",
        unit=ctx.delta,
    )
    est, same = _equivalence_claim(ctx, f, "rmsnorm_pre", "pre_ln")
    cost, seeds = compare(ctx.arm("rmsnorm_pre"), ctx.arm("pre_ln"), "train_s_per_step")
    f.details.append(describe("train s/step rmsnorm − layernorm", cost, seeds))
    return fill(f, est, combine([same, directional(cost, seeds, positive=False)]), ctx, "h")
