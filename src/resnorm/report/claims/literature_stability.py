"""Claims (a), (b), (c): how Pre-LN, Post-LN and the skip path behave in training
(gradients at init, warmup, rank collapse), as the literature reports."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from resnorm.report.analysis.stats import NONE, mean_ci
from resnorm.report.claims.claim import HERE, Claim
from resnorm.report.claims.needs import MIN_SEEDS, SHALLOW, Cell
from resnorm.report.claims.rules import (
    DEEP_MIN,
    INIT_KEYS,
    PAIR_KEYS,
    Context,
    Finding,
    compare,
    describe,
    fill,
    no_deep,
    shared_deepest,
)

GRAD_MIN_DEPTH = 4  # a per-layer profile needs a few layers to have a slope


def claim_a(ctx: Context) -> Finding:
    f = CLAIM_A.finding(
        ctx,
        f"Per run, the OLS slope of ln(per-block gradient norm at init, fixed probe batch) "
        f"against layer position 0..1 (0 = input side), depth ≥ {GRAD_MIN_DEPTH}. "
        f"Supported iff post_ln's slope and post_ln − pre_ln are both better (> 0 by at "
        f"least 0.1, one-sided t-tests, Holm), paired by depth and seed.",
        unit="Δ ln-growth across the stack",
    )
    post, pre = (
        g[g["depth"] >= GRAD_MIN_DEPTH].drop_duplicates(list(INIT_KEYS))
        for g in (ctx.arm("post_ln"), ctx.arm("pre_ln"))
    )
    growth = mean_ci(post.groupby("seed")["init_grad_slope"].mean())  # a seed is one value
    post_seeds = int(post.dropna(subset=["init_grad_slope"])["seed"].nunique())
    diff, seeds = compare(post, pre, "init_grad_slope", INIT_KEYS)
    f.details = [
        describe(
            "pre_ln slope",
            mean_ci(pre.groupby("seed")["init_grad_slope"].mean()),
            int(pre["seed"].nunique()),
        )
    ]
    parts = [
        CLAIM_A.probe_part("post_ln − pre_ln", diff, seeds, "init_grad_slope"),
        CLAIM_A.probe_part("post_ln slope", growth, post_seeds, "init_grad_slope"),
    ]
    return fill(f, parts, ctx)


CLAIM_A = Claim(
    "a",
    "Post-LN's per-layer gradient norm at initialisation grows toward the output "
    "layers, while Pre-LN's is flat",
    "Xiong et al. 2020",
    needs=(Cell("post_ln"), Cell("pre_ln")),
    test=claim_a,
    paper="Xiong et al. 2020 measure the FFN's second weight W² per layer at init with a "
    "token-level translation loss (d = 512, 6 layers, ReLU); " + HERE + ", the whole "
    "block's gradient on one probe batch. `resnorm probe xiong` measures their quantity "
    "in their setting (docs/xiong.md).",
    probes=("init_grad_slope",),
)


def _warmup_gain(ctx: Context, arch: str) -> pd.DataFrame:
    """Per setting and seed: score with warmup − score without (largest warmup > 0 used)."""
    runs = ctx.arm(arch)
    keys = [k for k in PAIR_KEYS if k != "warmup_steps"]
    warm = runs[runs["warmup_steps"] > 0].sort_values("warmup_steps", ascending=False)
    cold = runs[runs["warmup_steps"] == 0]
    merged = warm.drop_duplicates(keys).merge(cold.drop_duplicates(keys), on=keys)
    merged["gain"] = merged["value_x"] - merged["value_y"]
    out = merged[keys + ["gain"]]
    if out.empty:
        return out
    # the gain of one setting is one replicate only where that setting has MIN_SEEDS seeds
    setting = [k for k in keys if k != "seed"]
    counts = out.groupby(setting, dropna=False)["seed"].transform("nunique")
    return out[counts >= MIN_SEEDS]


def _reference(ctx: Context, arch: str, at: pd.DataFrame) -> pd.DataFrame:
    """The reference arm's runs at the settings (``at``'s setting keys) a claim was judged."""
    keys = [k for k in PAIR_KEYS if k not in ("seed", "warmup_steps")]
    if at.empty:
        return at
    return ctx.arm(arch).merge(at[keys].drop_duplicates(), on=keys)


def claim_b(ctx: Context) -> Finding:
    f = CLAIM_B.finding(
        ctx,
        "Gain from warmup = score(warmup > 0) − score(warmup = 0), same lr, "
        "depth and seed. Supported iff post_ln's gain − pre_ln's gain and post_ln's gain "
        "are both better (> 0 by the minimum effect; one-sided t-tests, Holm), paired by "
        "setting and seed, scores oriented so that higher is better.",
        unit=ctx.delta,
    )
    post, pre = _warmup_gain(ctx, "post_ln"), _warmup_gain(ctx, "pre_ln")
    keys = [k for k in PAIR_KEYS if k != "warmup_steps"]
    gain_post = replace(mean_ci(post.groupby("seed")["gain"].mean()), paired=True)
    inter, seeds = compare(post, pre, "gain", keys)
    f.details = [
        describe(
            "pre_ln gain from warmup",
            mean_ci(pre.groupby("seed")["gain"].mean()),
            int(pre["seed"].nunique()),
        )
    ]
    runs = ctx.arm("post_ln")
    parts = [
        ctx.part("post_ln gain − pre_ln gain", inter, seeds),
        ctx.part("post_ln gain from warmup", gain_post, int(post["seed"].nunique())),
        # failing without warmup is the claim's other form: its counts, tested exactly
        ctx.failure_part(
            "post_ln failures: warmup vs none",
            runs[runs["warmup_steps"] > 0].merge(post[keys[:-1]].drop_duplicates()),
            runs[runs["warmup_steps"] == 0].merge(post[keys[:-1]].drop_duplicates()),
            ("post_ln with warmup", "post_ln without"),
        ),
    ]
    f = fill(f, parts, ctx)
    f.untestable = ctx.learned(_reference(ctx, "pre_ln", post))
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


def claim_c(ctx: Context) -> Finding:
    f = CLAIM_C.finding(
        ctx,
        "Mean pairwise token cosine similarity after the last block at init "
        "(fixed probe batch), no_residual vs pre_ln (same norm, skip path off). "
        f"Supported iff at the deepest shared depth (≥ {DEEP_MIN}) off − on > 0, "
        "no_residual's similarity at that depth exceeds its shallowest depth's, and "
        "pre_ln's score is better than no_residual's (each better by its minimum effect; "
        "one-sided t-tests, Holm; paired by seed).",
        unit="Δ token cosine (off − on)",
    )
    deep = shared_deepest(ctx, "pre_ln", "no_residual")
    if not deep >= DEEP_MIN:
        f.details = [no_deep("pre_ln", "no_residual")]
        return fill(f, [CLAIM_C.probe_part("cosine off − on", NONE, 0, "init_cos_last")], ctx)
    off, on = ctx.arm("no_residual"), ctx.arm("pre_ln")
    off_deep, on_deep = off[off["depth"] == deep], on[on["depth"] == deep]
    cos, s1 = compare(
        off_deep.drop_duplicates(list(INIT_KEYS)),
        on_deep.drop_duplicates(list(INIT_KEYS)),
        "init_cos_last",
        INIT_KEYS,
    )
    shallow = off["depth"].min()
    off_shallow = off[off["depth"] == shallow].drop_duplicates(list(INIT_KEYS))
    grows, s2 = compare(
        off_deep.drop_duplicates(list(INIT_KEYS)), off_shallow, "init_cos_last", ("dim", "seed")
    )
    train, s3 = compare(on_deep, off_deep, "value")
    if shallow >= deep:
        s2 = 0  # only one depth: "with depth" cannot be judged
    f.details = [
        describe("final cosine off − on", compare(off_deep, on_deep, "final_cos_last")[0], s1),
    ]
    parts = [
        CLAIM_C.probe_part(f"cosine off − on at depth {deep:g}", cos, s1, "init_cos_last"),
        CLAIM_C.probe_part(
            f"no_residual cosine depth {deep:g} − {shallow:g}", grows, s2, "init_cos_last"
        ),
        ctx.part(f"score pre_ln − no_residual at depth {deep:g} ({ctx.metric})", train, s3),
    ]
    f = fill(f, parts, ctx)
    f.untestable = ctx.learned(on_deep)
    return f


CLAIM_C = Claim(
    "c",
    "Without residual connections token representations collapse with depth "
    "(cosine similarity → 1) and deep stacks stop training",
    "Dong et al. 2021",
    needs=(
        Cell("pre_ln"),
        Cell("no_residual"),
        Cell("pre_ln", depth=SHALLOW),
        Cell("no_residual", depth=SHALLOW),
    ),
    test=claim_c,
    paper="Dong et al. 2021: pure attention stacks (no MLP, no skip) and trained BERT-size "
    "models (d = 768, 12–24 layers); " + HERE + ", full blocks with the skip removed, "
    "cosine similarity at init.",
    probes=("init_cos_last",),
)
