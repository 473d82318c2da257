"""Claims (i)-(m): the seed article's own statements and formulas. One function each."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from resnorm.report.analysis import failures
from resnorm.report.analysis.stats import Estimate, pair
from resnorm.report.claims.claim import HERE, Claim
from resnorm.report.claims.either import either
from resnorm.report.claims.needs import HEADS, MIN_SEEDS, Cell
from resnorm.report.claims.rules import (
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    INIT_KEYS,
    NOT_SUPPORTED,
    NOT_WORSE,
    PAIR_KEYS,
    PROBE_MIN_EFFECTS,
    SUPPORTED,
    Context,
    Finding,
    compare,
    describe,
    fill,
)

ARTICLE = "seed article, §3.3"
UNSTATED = "The seed article states it without a setting; " + HERE + "."
GRAD_MIN_DEPTH = 4


def _init_arm(ctx: Context, arch: str, min_depth: int = 1) -> pd.DataFrame:
    """One run per (depth, dim, seed): init-time quantities do not depend on lr or budget."""
    g = ctx.arm(arch)
    return g[g["depth"] >= min_depth].drop_duplicates(list(INIT_KEYS))


def claim_i(ctx: Context) -> Finding:
    f = CLAIM_I.finding(
        ctx,
        "params(pre_ln) − params(no_residual): the same model with the identity skip path "
        "on vs off, paired by depth, dim and seed. An exact check (parameter counts are "
        "deterministic): supported iff every pair has more parameters with the skip path; "
        "not supported (equivalent) iff every pair has the same count.",
        unit="Δ parameters",
    )
    est, seeds = compare(
        _init_arm(ctx, "pre_ln"), _init_arm(ctx, "no_residual"), "params", INIT_KEYS
    )
    f.details = [
        "an identity residual x + F(x) has no weights; only rezero / layerscale add "
        "their scalar / vector gains",
    ]
    f = fill(f, [], ctx)
    f.effect, f.n = est.mean, est.n
    f.ci = (est.low, est.high) if est.has_ci else None
    pairs = pair(_init_arm(ctx, "pre_ln"), _init_arm(ctx, "no_residual"), list(INIT_KEYS), "params")
    if seeds < MIN_SEEDS:
        f.fixed = INCONCLUSIVE
    elif (pairs["diff"] > 0).all():
        f.fixed = SUPPORTED
    else:
        f.fixed = NOT_SUPPORTED
        f.outcome = EQUIVALENT if (pairs["diff"] == 0).all() else ""
    return f


CLAIM_I = Claim(
    "i",
    "Residual connections add parameters",
    ARTICLE,
    needs=(Cell("pre_ln"), Cell("no_residual")),
    test=claim_i,
    paper=UNSTATED,
)


def _expected_norm_params(position: str, depth: float, dim: float) -> float:
    """2·dim per LayerNorm; two sublayers per block; pre/sandwich add one final norm."""
    per_block = {"pre": 2, "post": 2, "sandwich": 4}.get(position)
    if per_block is None:
        return math.nan
    final = 1 if position in ("pre", "sandwich") else 0
    return 2 * dim * (per_block * depth + final)


def claim_j(ctx: Context) -> Finding:
    f = CLAIM_J.finding(
        ctx,
        "params(normed) − params(no_norm) for pre_ln (2·depth + 1 norms) and post_ln "
        "(2·depth norms), paired by depth, dim and seed, against 2·dim·(number of norms). "
        "Supported iff every pair matches exactly (effect = mean observed − expected).",
        unit="parameters (observed − expected)",
    )
    ref = _init_arm(ctx, "no_norm")
    frames = []
    for arch, position in (("pre_ln", "pre"), ("post_ln", "post")):
        p = pair(_init_arm(ctx, arch), ref, list(INIT_KEYS), "params")
        p["expected"] = [
            _expected_norm_params(position, d, m) for d, m in zip(p["depth"], p["dim"], strict=True)
        ]
        p["arch"] = arch
        frames.append(p)
    pairs = pd.concat(frames, ignore_index=True)
    gap = (pairs["diff"] - pairs["expected"]).to_numpy(dtype=float)
    seeds = int(pairs["seed"].nunique()) if len(pairs) else 0
    exact = bool(len(gap)) and bool(np.all(gap == 0))
    est = Estimate(
        float(gap.mean()) if len(gap) else math.nan,
        float(gap.min()) if len(gap) else None,
        float(gap.max()) if len(gap) else None,
        len(gap),
        paired=True,
    )
    for arch in ("pre_ln", "post_ln"):
        sub = pairs[pairs["arch"] == arch]
        if len(sub):
            seen = sorted({int(x) for x in sub["diff"]})
            want = sorted({int(x) for x in sub["expected"] if np.isfinite(x)})
            f.details.append(
                f"{arch} − no_norm: observed {seen}, expected {want} ({len(sub)} pairs)"
            )
    f.details.append("CI column: min and max of observed − expected over pairs (exact check)")
    f = fill(f, [], ctx)
    f.effect, f.n = est.mean, est.n
    f.ci = (est.low, est.high) if est.has_ci else None
    f.fixed = INCONCLUSIVE if seeds < MIN_SEEDS else SUPPORTED if exact else NOT_SUPPORTED
    return f


CLAIM_J = Claim(
    "j",
    "LayerNorm adds parameters: 2·dim (γ and β) per norm",
    ARTICLE,
    needs=(Cell("pre_ln"), Cell("post_ln"), Cell("no_norm")),
    test=claim_j,
    paper=UNSTATED,
)


def claim_k(ctx: Context) -> Finding:
    f = CLAIM_K.finding(
        ctx,
        "Spread of the per-block gradient norm at init = ln(max/min) over layers (0 = "
        f"flat), one run per architecture, depth ≥ {GRAD_MIN_DEPTH} and seed (init does not "
        "depend on lr or warmup). Two parts, paired by depth and seed (each seed averaged "
        "over the depths): spread(plain) − spread(no_norm: residual only) and spread(plain) "
        "− spread(no_residual: norm only). Supported iff both are better: the interval lies "
        f"above 0 and the mean is ≥ {PROBE_MIN_EFFECTS['init_grad_spread']:g}; equivalent "
        "(inside ± that) or worse refutes it. Each part is one decision from one two-sided "
        "(1 − α) interval, Holm-adjusted when the claim is primary, else exploratory "
        "(unadjusted). Also reported, not tested: plain − pre_ln.",
        unit="Δ ln(max/min) grad norm",
    )
    plain = _init_arm(ctx, "plain", GRAD_MIN_DEPTH)
    res, s1 = compare(
        plain, _init_arm(ctx, "no_norm", GRAD_MIN_DEPTH), "init_grad_spread", INIT_KEYS
    )
    norm, s2 = compare(
        plain, _init_arm(ctx, "no_residual", GRAD_MIN_DEPTH), "init_grad_spread", INIT_KEYS
    )
    both, s3 = compare(
        plain, _init_arm(ctx, "pre_ln", GRAD_MIN_DEPTH), "init_grad_spread", INIT_KEYS
    )
    f.details = [describe("plain − pre_ln (both)", both, s3)]
    parts = [
        CLAIM_K.probe_part("plain − no_norm (residual alone)", res, s1, "init_grad_spread"),
        CLAIM_K.probe_part("plain − no_residual (norm alone)", norm, s2, "init_grad_spread"),
    ]
    return fill(f, parts, ctx)


CLAIM_K = Claim(
    "k",
    "Residual connections and LayerNorm each prevent vanishing / exploding gradients",
    ARTICLE,
    needs=(Cell("plain"), Cell("no_norm"), Cell("no_residual"), Cell("pre_ln")),
    test=claim_k,
    paper=UNSTATED,
    probes=("init_grad_spread",),
)


def claim_l(ctx: Context) -> Finding:
    f = CLAIM_L.finding(
        ctx,
        f"Equivalence: score(uncentered_ln) − score(bert) (both Post-LN, ε = 1e-12) when it "
        f"trains (failed runs left out, their counts reported), paired by setting and seed. "
        f"Supported iff it is equivalent: its two-sided (1 − α) interval lies inside "
        f"±{ctx.margin:g} {ctx.metric}; better (interval above 0, mean ≥ {ctx.margin:g}) or "
        f"worse (below 0, mean ≤ −{ctx.margin:g}) refutes it. One decision from one "
        f"interval, Holm-adjusted when the claim is primary, else exploratory (unadjusted).",
        unit=ctx.delta,
    )
    un, bert = ctx.arm("uncentered_ln"), ctx.arm("bert")
    est, seeds = compare(un, bert, "value")
    f.details = [
        f"divergence rate uncentered_ln "
        f"{un['diverged'].mean() if len(un) else math.nan:.2f}, bert "
        f"{bert['diverged'].mean() if len(bert) else math.nan:.2f}",
    ]
    f = fill(f, [ctx.part("uncentered_ln − bert", est, seeds, EQUIVALENT)], ctx)
    f.untestable = ctx.learned(bert)
    return f


CLAIM_L = Claim(
    "l",
    "The article's LayerNorm y/√(σ²+ε) (no mean subtraction) works like LayerNorm",
    "seed article, §3.2",
    needs=(Cell("uncentered_ln"), Cell("bert")),
    test=claim_l,
    paper="The seed article's formula, tested as a drop-in for BERT's Post-LN; " + HERE + ".",
)


def _unscaled_advantage(ctx: Context, heads: int) -> pd.DataFrame:
    """Per setting and seed where both trained: score(unscaled_attn) − score(pre_ln) at
    ``heads`` heads, oriented so that > 0 means unscaled is better."""
    un, ref = ctx.arm("unscaled_attn", heads=heads), ctx.arm("pre_ln", heads=heads)
    p = pair(failures.trained(un), failures.trained(ref), list(PAIR_KEYS), "value")
    p["gap"] = p["diff"] * ctx.sign
    return p


def claim_m(ctx: Context) -> Finding:
    f = CLAIM_M.finding(
        ctx,
        f"Two parts, both must hold, paired by setting and seed. (1) Unscaled is not "
        f"better: score(pre_ln) − score(unscaled_attn) when it trains (failed runs left "
        f"out), each seed averaged over d_k = 16 and 64, is not worse: its interval lies "
        f"above −{ctx.margin:g} {ctx.metric}; worse (interval below 0, mean ≤ "
        f"−{ctx.margin:g}) refutes it. (2) It gets worse as d_k grows, in either form "
        f"(one decision, Bonferroni over the two): unscaled_attn fails less often at d_k = "
        f"16 (4 heads) than at d_k = 64 (1 head) (Fisher's exact test), or unscaled's "
        f"advantage (score unscaled_attn − pre_ln, on seeds where all four runs trained) at "
        f"d_k = 16 − at d_k = 64 is better: its interval lies above 0 and the mean is ≥ "
        f"{ctx.min_effect:g} {ctx.metric}; equivalent (inside ±{ctx.min_effect:g}) or worse "
        f"refutes it when the failures do not point the claimed way. Each part is one "
        f"decision from one two-sided (1 − α) interval or exact test, "
        f"Holm-adjusted when the claim is primary, else exploratory (unadjusted). Also "
        f"reported, not tested: attention entropy and max attention logit at init and at the "
        f"end (fixed probe batch).",
        unit=ctx.delta,
    )
    un, ref = ctx.arm("unscaled_attn"), ctx.arm("pre_ln")
    est, seeds = compare(ref, un, "value")
    keys = tuple(k for k in PAIR_KEYS if k != "heads")
    grows, s2 = compare(_unscaled_advantage(ctx, 4), _unscaled_advantage(ctx, 1), "gap", keys)
    f.details = []
    for col, name in (
        ("init_attn_entropy", "attention entropy at init (nats)"),
        ("init_attn_max_logit", "max attention logit at init"),
        ("final_attn_entropy", "attention entropy at the end (nats)"),
        ("final_attn_max_logit", "max attention logit at the end"),
    ):
        for heads, dk in ((4, 16), (1, 64)):
            d, s = compare(
                ctx.arm("unscaled_attn", heads=heads), ctx.arm("pre_ln", heads=heads), col
            )
            f.details.append(describe(f"{name}, unscaled − scaled, d_k={dk}", d, s))
    narrow, wide = ctx.arm("unscaled_attn", heads=HEADS), ctx.arm("unscaled_attn", heads=1)
    arms = ("unscaled_attn at d_k=16", "unscaled_attn at d_k=64")
    parts = [
        ctx.part("score scaled − unscaled", est, seeds, NOT_WORSE),
        either(
            "worse as d_k grows",
            ctx.failure_part("unscaled_attn failures", narrow, wide, arms),
            ctx.part(
                "unscaled's advantage d_k=16 − d_k=64, when all four train",
                grows,
                s2,
                BETTER,
                score=False,
            ),  # fmt: skip
        ),
    ]
    f = fill(f, parts, ctx)
    f.untestable = ctx.learned(ref)
    return f


CLAIM_M = Claim(
    "m",
    "Dropping 1/√d_k (the article's softmax(QKᵀ)V) is no better than scaled attention "
    "and gets worse as d_k grows",
    "seed article, §4.1 (the formula); Vaswani et al. 2017 (why the scale)",
    # d_k = 16 (4 heads) and 64 (1 head): does the missing 1/sqrt(d_k) hurt more as d_k grows?
    needs=tuple(Cell(a, heads=h) for a in ("unscaled_attn", "pre_ln") for h in (HEADS, 1)),
    test=claim_m,
    paper="The seed article's formula; " + HERE + ", with 4 heads (d_k = 16) and 1 head "
    "(d_k = 64, the usual head width).",
)
