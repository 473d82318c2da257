"""Claim (b): Post-LN needs learning-rate warmup, Pre-LN much less (Xiong et al. 2020).

"Needs warmup" shows as failing without it (runs that do not train: an exact test on
failure counts) or as a lower score on the seeds that do train; each side of the claim is
one EitherPart (claims.either) over those two forms.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from resnorm.report.analysis import failures
from resnorm.report.analysis.cells import at_shared
from resnorm.report.analysis.stats import Estimate
from resnorm.report.claims.claim import HERE, Claim
from resnorm.report.claims.either import either
from resnorm.report.claims.needs import MIN_SEEDS, Cell
from resnorm.report.claims.rules import PAIR_KEYS, Context, Finding, compare, describe, fill

# a setting without its warmup: warm and cold runs of one setting and seed are paired
SETTING = [k for k in PAIR_KEYS if k not in ("warmup_steps", "seed")]
KEYS = [*SETTING, "seed"]


def warmup_arms(ctx: Context, arch: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(with warmup, without) runs of ``arch``, whatever their outcome, at the seeds of the
    settings that have both for MIN_SEEDS seeds; with warmup: the largest warmup > 0."""
    runs = ctx.arm(arch)
    warm = runs[runs["warmup_steps"] > 0].sort_values("warmup_steps", ascending=False)
    warm = warm.drop_duplicates(KEYS)
    cold = runs[runs["warmup_steps"] == 0].drop_duplicates(KEYS)
    both = warm[KEYS].merge(cold[KEYS], on=KEYS)
    if both.empty:
        return warm.iloc[0:0], cold.iloc[0:0]
    counts = both.groupby(SETTING, dropna=False)["seed"].transform("nunique")
    both = both[counts >= MIN_SEEDS]
    return warm.merge(both, on=KEYS), cold.merge(both, on=KEYS)


def warmup_gain(warm: pd.DataFrame, cold: pd.DataFrame) -> pd.DataFrame:
    """Per setting and seed where *both* runs trained: score with warmup − score without
    (raw, not oriented). A failed run's score never enters a gain."""
    w, c = failures.trained(warm), failures.trained(cold)
    merged = w[[*KEYS, "value"]].merge(c[[*KEYS, "value"]], on=KEYS, suffixes=("_w", "_c"))
    merged["gain"] = merged["value_w"] - merged["value_c"]
    return merged[[*KEYS, "gain"]]


def counts_note(arch: str, warm: pd.DataFrame, cold: pd.DataFrame) -> str:
    names = (f"{arch} with warmup", f"{arch} without")
    return failures.note(failures.count(warm), failures.count(cold), names)


def gain_estimate(arch: str, warm: pd.DataFrame, cold: pd.DataFrame) -> tuple[Estimate, int]:
    """``arch``'s gain from warmup when it trains, paired by setting and seed, with both
    arms' failure counts in its note."""
    est, seeds = compare(warm, cold, "value", KEYS)  # drops failed runs: seeds both trained
    note = "seeds where both trained; " + counts_note(arch, warm, cold)
    return (replace(est, note=note) if est.n else est), seeds


def claim_b(ctx: Context) -> Finding:
    f = CLAIM_B.finding(
        ctx,
        "Runs with warmup (> 0 steps) vs without (0), same setting (depth, lr, budget) and "
        "seed. Two parts, both must be better: (1) post_ln needs warmup — either post_ln "
        "fails more often without warmup than with it (Fisher's exact test on failed "
        "seeds), or, when it trains (seeds where both of its runs trained), its score gain "
        "from warmup is better (> 0 by the minimum effect); (2) pre_ln needs it less — "
        "either pre_ln without warmup fails less often than post_ln without warmup "
        "(Fisher's exact test), or, when it trains, post_ln's gain − pre_ln's gain is "
        "better (paired by setting and seed). Why either form: the claim is about failing "
        "or training worse without warmup, and where an arm fails on every seed there is "
        "no score left to compare. Each part is one decision (the better-pointing form's "
        "two-sided p, Bonferroni ×2 over the forms; score forms from one (1 − α) "
        "interval), Holm-adjusted when the claim is primary, else exploratory "
        "(unadjusted); a part is refuted only when no form points the claimed way and one "
        "contradicts it (score equivalent or worse, or more failures with warmup). "
        "Scores oriented so that higher is better.",
        unit=f"post_ln gain from warmup when it trains, {ctx.delta}",
    )
    post_w, post_c = warmup_arms(ctx, "post_ln")
    pre_w, pre_c = warmup_arms(ctx, "pre_ln")
    gain_post, s_post = gain_estimate("post_ln", post_w, post_c)
    gain_pre, s_pre = gain_estimate("pre_ln", pre_w, pre_c)
    inter, s_inter = compare(warmup_gain(post_w, post_c), warmup_gain(pre_w, pre_c), "gain", KEYS)
    notes = counts_note("post_ln", post_w, post_c) + "; " + counts_note("pre_ln", pre_w, pre_c)
    inter = replace(inter, note="seeds where all four runs trained; " + notes) if inter.n else inter
    cold_pre, cold_post = at_shared(pre_c, post_c, SETTING)
    post_needs = either(
        "post_ln needs warmup",
        ctx.failure_part(
            "post_ln failures",
            post_w,
            post_c,
            ("post_ln with warmup", "post_ln without"),
        ),
        ctx.part("post_ln gain from warmup, when it trains", gain_post, s_post),
    )
    pre_less = either(
        "pre_ln needs it less",
        ctx.failure_part(
            "failures without warmup",
            cold_pre,
            cold_post,
            ("pre_ln without warmup", "post_ln without"),
        ),
        ctx.part("post_ln gain − pre_ln gain, when it trains", inter, s_inter),
    )
    f.details = [
        describe("pre_ln gain from warmup, when it trains", gain_pre, s_pre),
    ]
    f = fill(f, [post_needs, pre_less], ctx)
    # the reference: pre_ln with warmup, at the settings post_ln is judged at
    pre = ctx.arm("pre_ln")
    f.untestable = ctx.learned(at_shared(pre[pre["warmup_steps"] > 0], post_w, SETTING)[0])
    return f


CLAIM_B = Claim(
    "b",
    "Post-LN needs learning-rate warmup; Pre-LN much less",
    "Xiong et al. 2020",
    needs=(Cell("post_ln"), Cell("post_ln", warmup=0), Cell("pre_ln"), Cell("pre_ln", warmup=0)),
    test=claim_b,
    paper="Xiong et al. 2020: translation and BERT (d = 512–768), warmup of thousands of "
    "steps, 100k+ steps; " + HERE + ", warmup 50 vs 0 steps.",
)
