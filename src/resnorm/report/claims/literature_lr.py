"""Claims (f), (n): how sensitive each variant's final loss is to the learning rate
(Wortsman et al. 2023's measure), Pre-LN against Post-LN and no norm, qk-layernorm
against Pre-LN."""

from __future__ import annotations

from resnorm.report.analysis import lr_sensitivity
from resnorm.report.analysis.stats import NONE, Estimate
from resnorm.report.claims.claim import HERE, Claim
from resnorm.report.claims.needs import lr_grid
from resnorm.report.claims.rules import Context, Finding, compare, fill


def _sensitivity_diff(ctx: Context, arch: str, ref: str) -> tuple[Estimate, int, str]:
    """sensitivity(arch) − sensitivity(ref), each on the LRs both have, paired by seed."""
    a, r = ctx.runs[ctx.runs["arch"] == arch], ctx.runs[ctx.runs["arch"] == ref]
    lrs = set(a["lr"].dropna()) & set(r["lr"].dropna())
    sa, sr = lr_sensitivity.per_seed(a, lrs), lr_sensitivity.per_seed(r, lrs)
    if sa.empty or sr.empty:
        return NONE, 0, ""
    keys = ("depth", "dim", "warmup_steps", "max_steps", "seed")
    est, seeds = compare(sa, sr, "lr_sensitivity", keys)
    return est, seeds, ", ".join(f"{x:g}" for x in sorted(lrs))


def claim_f(ctx: Context) -> Finding:
    f = CLAIM_F.finding(
        ctx,
        lr_sensitivity.DEFINITION + " Supported iff "
        "sensitivity(post_ln) − sensitivity(pre_ln) and sensitivity(no_norm) − "
        "sensitivity(pre_ln) are both better (> 0 by 0.05 nats; one-sided t-tests, Holm), "
        "paired by seed, on the LRs both have (≥ 3).",
        unit="Δ LR sensitivity (nats)",
    )
    post, s1, lrs1 = _sensitivity_diff(ctx, "post_ln", "pre_ln")
    nonorm, s2, lrs2 = _sensitivity_diff(ctx, "no_norm", "pre_ln")
    parts = [
        CLAIM_F.probe_part(
            f"post_ln − pre_ln (LRs {lrs1 or 'none shared'})", post, s1, "lr_sensitivity"
        ),
        CLAIM_F.probe_part(
            f"no_norm − pre_ln (LRs {lrs2 or 'none shared'})", nonorm, s2, "lr_sensitivity"
        ),
    ]
    return fill(f, parts, ctx)


CLAIM_F = Claim(
    "f",
    "Pre-LN is less sensitive to the learning rate than Post-LN and than no norm",
    "general finding (Xiong et al. 2020; Liu et al. 2020); sensitivity as Wortsman et al. 2023",
    needs=lr_grid("pre_ln", "post_ln", "no_norm"),
    test=claim_f,
    paper="Xiong et al. 2020 and Liu et al. 2020 report Pre-LN trains at larger lr and "
    "without warmup on translation/BERT; " + HERE + ", lr grid 1e-4 … 1e-1.",
    probes=("lr_sensitivity",),
)


def claim_n(ctx: Context) -> Finding:
    f = CLAIM_N.finding(
        ctx,
        lr_sensitivity.DEFINITION + " Supported iff sensitivity(pre_ln) − "
        "sensitivity(qk_norm) is better (> 0 by 0.05 nats; one-sided t-test, Holm), paired "
        "by seed, on the LRs both have (the study's grid: 3e-4 … 3e-1).",
        unit="Δ LR sensitivity (nats)",
    )
    est, seeds, lrs = _sensitivity_diff(ctx, "pre_ln", "qk_norm")
    name = f"pre_ln − qk_norm (LRs {lrs or 'none shared'})"
    part = CLAIM_N.probe_part(name, est, seeds, "lr_sensitivity")
    return fill(f, [part], ctx)


# Wortsman et al. 2023's half-decade grid, for their own claim
WORTSMAN_GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)

CLAIM_N = Claim(
    "n",
    "qk-layernorm reduces the learning-rate sensitivity of a Pre-LN Transformer",
    "Wortsman et al. 2023",
    needs=lr_grid("pre_ln", "qk_norm", grid=WORTSMAN_GRID),
    test=claim_n,
    paper="Wortsman et al. 2023: decoder LMs of 9M–1.2B parameters on C4, 10k+ steps, lr "
    "grid 1e-4 … 3e-1; " + HERE + ", lr grid 3e-4 … 3e-1.",
    probes=("lr_sensitivity",),
)
