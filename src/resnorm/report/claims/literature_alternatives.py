"""Claims (d), (e), (g), (h): what the literature says replaces or repairs a norm or the
skip path (ReZero, DeepNorm, DyT, RMSNorm) is as good as the standard block. (d) and (e),
judged where their baseline fails, live in claims.literature_depth."""

from __future__ import annotations

from resnorm.report.claims.claim import OWN_LR, Claim
from resnorm.report.claims.literature_depth import CLAIM_D, CLAIM_E, DECISION
from resnorm.report.claims.lr_selection import (
    BASE_LR_ONLY,
    own_best_arms,
    protocol_text,
    setting_keys,
)
from resnorm.report.claims.needs import lr_grid
from resnorm.report.claims.rules import EQUIVALENT, Context, Finding, compare, fill
from resnorm.report.claims.step_time import step_time_text

__all__ = ["BASE_LR_ONLY", "CLAIM_D", "CLAIM_E", "CLAIM_G", "CLAIM_H"]


def _equivalence_test(ctx: Context, arch: str, ref: str) -> str:
    return (
        f"Equivalence, {protocol_text()}: score({arch}) − score({ref}), paired by seed, when "
        f"it trains (seeds where both trained; both arms' failure counts shown), each seed "
        f"averaged over the settings where both have a complete grid. One part, equivalent "
        f"iff its interval lies within ±{ctx.margin:g} {ctx.metric}; 'better' or 'worse' "
        f"refute it. " + DECISION
    )


def _equivalence(ctx: Context, f: Finding, arch: str, ref: str) -> Finding:
    """``arch`` against ``ref``, each at its own best lr: the part, details and caveat."""
    arms = own_best_arms(ctx, arch, ref)
    est, seeds = compare(arms.a, arms.b, "value", arms.keys)
    f.details = list(arms.details)
    f = fill(f, [ctx.part(f"{arch} − {ref} at {arms.where}", est, seeds, EQUIVALENT)], ctx)
    f.untestable = ctx.learned(arms.b)
    f.caveat = "" if arms.own_lr else BASE_LR_ONLY
    return f


def claim_g(ctx: Context) -> Finding:
    f = CLAIM_G.finding(ctx, _equivalence_test(ctx, "dyt_pre", "pre_ln"), unit=ctx.delta)
    return _equivalence(ctx, f, "dyt_pre", "pre_ln")


CLAIM_G = Claim(
    "g",
    "DyT (tanh) matches LayerNorm",
    "Zhu et al. 2025",
    # each variant at its own best lr of the grid, chosen on validation
    needs=lr_grid("dyt_pre", "pre_ln"),
    test=claim_g,
    paper="Zhu et al. 2025: ViT/ConvNeXt on ImageNet, LLaMA 7B–70B, DiT, wav2vec, each at "
    "tuned settings; " + OWN_LR + ".",
)


def claim_h(ctx: Context) -> Finding:
    f = CLAIM_H.finding(
        ctx,
        _equivalence_test(ctx, "rmsnorm_pre", "pre_ln") + " The claim's other half, that "
        "RMSNorm is cheaper, is measured where it means something: `resnorm bench norm` "
        "times the norms at widths 512–4096 on the device at hand (docs/performance.md). "
        "The step times of these dim-64 runs are shown, not tested, one value per timer: "
        "the members of a pack share one timer, so a pack counts once (n = packs, not runs).",
        unit=ctx.delta,
    )
    f = _equivalence(ctx, f, "rmsnorm_pre", "pre_ln")
    f.details.append(_step_times(ctx))
    return f


def _step_times(ctx: Context) -> str:
    """Step times at the judged setting, over every lr (a step's cost does not depend on
    it), so that each variant has as many timers as it has packs there."""
    arms = own_best_arms(ctx, "rmsnorm_pre", "pre_ln")
    a, b = ctx.arm("rmsnorm_pre"), ctx.arm("pre_ln")
    if len(arms.a) and len(arms.b):
        keys = [k for k in setting_keys(arms.a) if k in a and k in b]
        where = arms.a[keys].drop_duplicates()
        a, b = a.merge(where, on=keys), b.merge(where, on=keys)
    return step_time_text("train s/step rmsnorm_pre − pre_ln (dim 64)", a, b)


CLAIM_H = Claim(
    "h",
    "RMSNorm matches LayerNorm (its cost: resnorm bench norm)",
    "Zhang & Sennrich 2019",
    # each variant at its own best lr of the grid, as (g): pre_ln's grid cells are shared
    needs=lr_grid("rmsnorm_pre", "pre_ln"),
    test=claim_h,
    paper="Zhang & Sennrich 2019: translation models (d = 512) timed on GPUs; " + OWN_LR + "; "
    "the cost is timed by `resnorm bench norm` at widths 512–4096.",
)
