"""Claims (f), (n): how sensitive each variant's final loss is to the learning rate
(Wortsman et al. 2023's measure), Pre-LN against Post-LN and no norm, qk-layernorm
against Pre-LN.

Both compare two variants' sensitivities on one LR set and one clamp: per setting (the whole
architecture but the variant), the LRs both variants have (each at >= MIN_SEEDS seeds),
at least lr_sensitivity.MIN_GRID of them, else the part has no estimate and says so; the
clamp L_0 is the task's (``lr_sensitivity.clamps``), common to every variant.
"""

from __future__ import annotations

import pandas as pd

from resnorm.report.analysis import lr_sensitivity
from resnorm.report.analysis.cells import cell_keys
from resnorm.report.analysis.stats import NONE, Estimate
from resnorm.report.claims.claim import HERE, Claim
from resnorm.report.claims.needs import MIN_SEEDS, lr_grid
from resnorm.report.claims.rules import Context, Finding, compare, fill
from resnorm.report.claims.verdicts import Part

GRID = lr_sensitivity.MIN_GRID
# How each part is judged (the end of both claims' test texts).
HOW = (
    f"each > 0 by at least 0.05 nats, one decision per part from one two-sided (1 − α) "
    f"t-interval (Holm-adjusted over the study's primary claims, else exploratory). Paired "
    f"by setting (the whole architecture but the variant: depth, width, heads, FFN width, "
    f"warmup, schedule, budget) and seed, each setting on the LRs both variants have (at "
    f"≥ {MIN_SEEDS} seeds each; ≥ {GRID} LRs, else the part has no estimate), every seed on "
    f"exactly that set. Failures are part of the measure (a diverged run counts at L_0, a "
    f"run that did not train at its loss, at most L_0): not a 'when it trains' comparison."
)


def setting_keys(runs: pd.DataFrame) -> list[str]:
    """What two grids of different variants must share to be paired: the whole cell key
    but task, variant and lr (the seed is paired on apart)."""
    return [k for k in cell_keys(runs, without=("lr",)) if k not in ("task", "arch")]


def shared_lrs(a: pd.DataFrame, b: pd.DataFrame) -> set[float]:
    """The LRs at which both ``a`` and ``b`` (one setting each) have >= MIN_SEEDS seeds."""

    def lrs(g: pd.DataFrame) -> set[float]:
        seeds = g.groupby("lr")["seed"].nunique()
        return {float(lr) for lr, n in seeds.items() if n >= MIN_SEEDS}

    return lrs(a) & lrs(b)


def sensitivity_diff(ctx: Context, arch: str, ref: str) -> tuple[Estimate, int, str]:
    """sensitivity(arch) − sensitivity(ref) paired by setting and seed, each setting on the
    LRs both have; returns (estimate, seeds, the LR sets used or why there is none)."""
    init = lr_sensitivity.clamps(ctx.widths)
    runs = ctx.runs[ctx.runs["arch"].isin([arch, ref])]
    keys = setting_keys(runs)
    sa, sr, used, short = [], [], [], []
    for _, g in runs.groupby(keys, dropna=False) if len(runs) else ():
        ga, gr = g[g["arch"] == arch], g[g["arch"] == ref]
        if ga.empty or gr.empty:
            continue
        lrs = shared_lrs(ga, gr)
        if len(lrs) < GRID:
            short.append(lrs)
            continue
        sa.append(lr_sensitivity.per_seed(ga, lrs, init))
        sr.append(lr_sensitivity.per_seed(gr, lrs, init))
        used.append(lrs)
    l0 = init.get(ctx.task)
    clamp = f"; L_0 {l0:.4g}" if l0 is not None else "; no loss at init"
    if not used:
        seen = "; ".join(lr_sensitivity.lr_text(s) or "none" for s in short) or "none"
        why = f"no estimate: fewer than {GRID} LRs shared (shared: {seen})"
        return NONE, 0, why
    a, r = pd.concat(sa, ignore_index=True), pd.concat(sr, ignore_index=True)
    if a.empty or r.empty:
        return NONE, 0, "no seed has every shared LR" + clamp
    est, seeds = compare(a, r, "lr_sensitivity", (*keys, "seed"))
    sets = "; ".join(sorted({lr_sensitivity.lr_text(s) for s in used}))
    return est, seeds, f"on LRs {sets}{clamp}"


def lr_part(claim: Claim, ctx: Context, arch: str, ref: str) -> Part:
    est, seeds, how = sensitivity_diff(ctx, arch, ref)
    return claim.probe_part(f"{arch} − {ref} ({how})", est, seeds, "lr_sensitivity")


def claim_f(ctx: Context) -> Finding:
    f = CLAIM_F.finding(
        ctx,
        lr_sensitivity.DEFINITION + " Supported iff sensitivity(post_ln) − "
        "sensitivity(pre_ln) and sensitivity(no_norm) − sensitivity(pre_ln) are both "
        "better: " + HOW,
        unit="Δ LR sensitivity (nats)",
    )
    parts = [lr_part(CLAIM_F, ctx, "post_ln", "pre_ln"), lr_part(CLAIM_F, ctx, "no_norm", "pre_ln")]
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
        "sensitivity(qk_norm) is better (the study runs both on one grid, 3e-4 … 3e-1): " + HOW,
        unit="Δ LR sensitivity (nats)",
    )
    return fill(f, [lr_part(CLAIM_N, ctx, "pre_ln", "qk_norm")], ctx)


# Wortsman et al. 2023's half-decade grid, for their own claim: both variants on all of it
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
