"""Claims (a), (b), (c): how Pre-LN, Post-LN and the skip path behave in training
(gradients at init, warmup, rank collapse), as the literature reports. (b) lives in
literature_warmup.py and is re-exported here."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from resnorm.report.analysis.cells import at_shared
from resnorm.report.analysis.stats import NONE, Estimate, complete_settings, mean_ci, pair
from resnorm.report.claims.ceiling import CeilingPart, ceiling
from resnorm.report.claims.claim import HERE, Claim
from resnorm.report.claims.either import either
from resnorm.report.claims.literature_warmup import CLAIM_B
from resnorm.report.claims.needs import MIN_SEEDS, SHALLOW, Cell
from resnorm.report.claims.rules import (
    DEEP_MIN,
    INIT_KEYS,
    PAIR_KEYS,
    PROBE_MIN_EFFECTS,
    Context,
    Finding,
    compare,
    describe,
    fill,
    no_deep,
    shared_deepest,
)
from resnorm.report.claims.verdicts import EQUIVALENT

__all__ = ["CLAIM_A", "CLAIM_B", "CLAIM_C"]

GRAD_MIN_DEPTH = 4  # a per-layer profile needs a few layers to have a slope
SLOPE = "init_grad_slope"


def _per_seed(runs: pd.DataFrame, column: str):
    return mean_ci(runs.groupby("seed")[column].mean())  # a seed is one value


LAST = "init_grad_last_ln"
# Theorem 1's depth exponent of the last layer's gradient norm: Post-LN O(d·sqrt(ln d))
# does not depend on L, Pre-LN O(d·sqrt(ln d / L)) shrinks as L^(-1/2)
THEOREM_1 = {"post_ln": 0.0, "pre_ln": -0.5}
CELL = ("depth", "dim", "heads")  # one init cell: init does not depend on lr or warmup


def _with_last(runs: pd.DataFrame) -> pd.DataFrame:
    return runs if LAST in runs else runs.assign(**{LAST: math.nan})


def exponent_depths(*arms: pd.DataFrame) -> list[float]:
    """The two largest depths at which every arm has a complete cell (MIN_SEEDS seeds with
    a finite last-block gradient norm, at a width and head count all share); [] if < 2."""
    cells: set | None = None
    for g in arms:
        g = g[np.isfinite(g[LAST].astype(float))]
        counts = g.groupby(list(CELL))["seed"].nunique() if len(g) else pd.Series()
        done = set(counts[counts >= MIN_SEEDS].index)
        cells = done if cells is None else cells & done
    depths = sorted({k[0] for k in cells or ()})
    return depths[-2:] if len(depths) >= 2 else []


def local_exponent(runs: pd.DataFrame, lo: float, hi: float) -> pd.Series:
    """Per seed, the slope of ln(last-block gradient norm at init) against ln(depth) from
    ``lo`` to ``hi``: the runs at both depths paired on width, heads and seed (a seed
    missing at one depth drops out), complete settings only, each seed averaged over them."""
    deep, shallow = (runs[runs["depth"] == d] for d in (hi, lo))
    keys = [k for k in INIT_KEYS if k != "depth"]
    pairs = complete_settings(pair(deep, shallow, keys, LAST), keys[:-1], MIN_SEEDS)
    if pairs.empty:
        return pd.Series(dtype=float)
    return pairs.groupby("seed")["diff"].mean() / math.log(hi / lo)


def _g(x: float) -> str:
    return f"{x:g}".replace("-", "−")


def _paired(per_seed: pd.Series) -> Estimate:
    return replace(mean_ci(per_seed), paired=True) if len(per_seed) else NONE


def theorem_1(post: pd.DataFrame, pre: pd.DataFrame) -> list[str]:
    """Described (untested) details: each arm's local depth exponent of its last block's
    gradient norm, beside Theorem 1's asymptotic prediction, and pre_ln − post_ln."""
    post, pre = _with_last(post), _with_last(pre)
    depths = exponent_depths(post, pre)
    if not depths:
        return [
            f"Theorem 1's depth exponent: no two depths at which post_ln and pre_ln both "
            f"have {MIN_SEEDS} seeds with a last-block gradient norm at init"
        ]
    lo, hi = depths
    slopes = {a: local_exponent(g, lo, hi) for a, g in (("post_ln", post), ("pre_ln", pre))}
    name = f"d ln(last-block gradient norm at init) / d ln(depth), depth {lo:g} → {hi:g}"
    lines = [
        describe(f"{a} {name} (Theorem 1, asymptotic: {_g(THEOREM_1[a])})", _paired(x), len(x))
        for a, x in slopes.items()
    ]
    both = (slopes["pre_ln"] - slopes["post_ln"]).dropna()  # paired by seed
    lines.append(describe(f"pre_ln − post_ln {name} (Theorem 1: −0.5)", _paired(both), len(both)))
    return lines


def claim_a(ctx: Context) -> Finding:
    m = PROBE_MIN_EFFECTS[SLOPE]
    f = CLAIM_A.finding(
        ctx,
        f"Per run, the OLS slope of ln(per-block gradient norm at init, fixed probe batch) "
        f"against layer position 0..1 (0 = input side), at the depths ≥ {GRAD_MIN_DEPTH} both "
        f"arms have; one run per architecture and seed (init does not depend on lr or "
        f"warmup), each seed averaged over those depths. Supported iff all three parts "
        f"hold: post_ln's slope is better (interval above 0 and mean ≥ {m:g}: it grows "
        f"toward the output), pre_ln's slope is equivalent to 0 (its interval inside ±{m:g}: "
        f"flat), and post_ln − pre_ln (paired by depth and seed) is better. Each part is one "
        f"decision from one two-sided (1 − α) interval, Holm-adjusted when the claim is "
        f"primary, else exploratory (unadjusted). Also reported, not tested: Theorem 1's "
        f"depth scaling of the last block's gradient norm, per arm the local exponent "
        f"d ln(norm) / d ln(depth) between the two largest depths where both arms have "
        f"{MIN_SEEDS} seeds (paired across them by seed), against its asymptotic "
        f"predictions 0 (post_ln) and −0.5 (pre_ln).",
        unit="ln-growth across the stack (post_ln)",
    )
    post, pre = (
        g[g["depth"] >= GRAD_MIN_DEPTH].drop_duplicates(list(INIT_KEYS))
        for g in (ctx.arm("post_ln"), ctx.arm("pre_ln"))
    )
    # both arms at the same depths: a depth only one arm has would tilt one part, not both
    depths = sorted(set(post["depth"]) & set(pre["depth"]))
    post, pre = post[post["depth"].isin(depths)], pre[pre["depth"].isin(depths)]
    diff, seeds = compare(post, pre, SLOPE, INIT_KEYS)
    nseeds = [int(g.dropna(subset=[SLOPE])["seed"].nunique()) for g in (post, pre)]
    # Theorem 1 is asymptotic in L and an exponent has no declared minimum effect: shown
    f.details = theorem_1(ctx.arm("post_ln"), ctx.arm("pre_ln"))
    parts = [
        CLAIM_A.probe_part("post_ln slope (grows)", _per_seed(post, SLOPE), nseeds[0], SLOPE),
        CLAIM_A.probe_part(
            "pre_ln slope (flat)", _per_seed(pre, SLOPE), nseeds[1], SLOPE, expect=EQUIVALENT
        ),
        CLAIM_A.probe_part("post_ln − pre_ln", diff, seeds, SLOPE),
    ]
    return fill(f, parts, ctx)


CLAIM_A = Claim(
    "a",
    "Post-LN's per-layer gradient norm at initialisation grows toward the output "
    "layers, while Pre-LN's is flat",
    "Xiong et al. 2020",
    # depth 16 too: Theorem 1's exponent needs two depths (post_ln_d16 is also (e)'s cell)
    needs=(Cell("post_ln"), Cell("pre_ln"), Cell("post_ln", depth=16), Cell("pre_ln", depth=16)),
    test=claim_a,
    paper="Xiong et al. 2020 measure the FFN's second weight W² per layer at init with a "
    "token-level translation loss (d = 512, 6 layers, ReLU); " + HERE + ", and depth 16 "
    "for Theorem 1's exponent; the whole block's gradient on one probe batch. `resnorm "
    "probe xiong` measures their quantity in their setting (docs/xiong.md).",
    probes=(SLOPE,),
)


COS = "init_cos_last"
# the token cosine after training is the same quantity as at init: the same minimum effect
COS_MIN = PROBE_MIN_EFFECTS[COS]
# runs of one arm at two depths are paired on everything else
NOT_DEPTH = tuple(k for k in PAIR_KEYS if k != "depth")


def claim_c(ctx: Context) -> Finding:
    f = CLAIM_C.finding(
        ctx,
        "Mean pairwise token cosine similarity after the last block (fixed probe batch), "
        f"no_residual vs pre_ln (same norm, skip path off), at the deepest shared depth "
        f"(≥ {DEEP_MIN}) and no_residual's shallowest. Three parts, all must hold: (1) at "
        "init, cosine off − on is better (> 0 by its minimum effect; paired by seed); (2) "
        "collapse with depth: no_residual's cosine *after training* at the deep depth − at "
        "the shallow one is better (paired by setting and seed; failed runs kept: the "
        "claim is that they collapse). The init cosine is not used for (2): it can be at "
        f"its ceiling already at the shallow depth. Ceiling rule: if no_residual's mean "
        f"cosine at the shallow depth is within the minimum effect ({COS_MIN:g}) of 1, it "
        "cannot rise by that much, so (2) is not testable (and with it the finding, unless "
        "another part refutes it). (3) deep stacks stop training — either no_residual "
        "fails more often than pre_ln at that depth (Fisher's exact test), or, when both "
        "train, pre_ln's score is better (one decision, Bonferroni ×2 over the two forms; "
        "refuted only when neither form points the claimed way and one contradicts it). "
        "Each part is one decision from one (1 − α) interval (or exact test), "
        "Holm-adjusted when the claim is primary, else exploratory (unadjusted).",
        unit="Δ token cosine at init (off − on)",
    )
    deep = shared_deepest(ctx, "pre_ln", "no_residual")
    if not deep >= DEEP_MIN:
        f.details = [no_deep("pre_ln", "no_residual")]
        return fill(f, [CLAIM_C.probe_part("cosine off − on", NONE, 0, COS)], ctx)
    off, on = ctx.arm("no_residual"), ctx.arm("pre_ln")
    off_deep, on_deep = off[off["depth"] == deep], on[on["depth"] == deep]
    init_off, init_on = (g.drop_duplicates(list(INIT_KEYS)) for g in (off_deep, on_deep))
    cos, s1 = compare(init_off, init_on, COS, INIT_KEYS)
    shallow = off["depth"].min()
    off_shallow = off[off["depth"] == shallow]
    grows, s2 = compare(off_deep, off_shallow, "final_cos_last", NOT_DEPTH)
    init_grows, s_init = compare(
        init_off, off_shallow.drop_duplicates(list(INIT_KEYS)), COS, ("dim", "heads", "seed")
    )
    if shallow >= deep:
        s2 = s_init = 0  # only one depth: "with depth" cannot be judged
    train, s3 = compare(on_deep, off_deep, "value")
    init_cap = ceiling(off_shallow.drop_duplicates(list(INIT_KEYS))[COS], COS_MIN)
    f.details = [
        describe(
            f"no_residual init cosine depth {deep:g} − {shallow:g}"
            + (f" ({init_cap})" if init_cap else ""),
            init_grows,
            s_init,
        ),
        describe("final cosine off − on", compare(off_deep, on_deep, "final_cos_last")[0], s1),
    ]
    on_at, off_at = at_shared(on_deep, off_deep, [k for k in PAIR_KEYS if k != "seed"])
    parts = [
        CLAIM_C.probe_part(f"cosine off − on at depth {deep:g}", cos, s1, COS),
        CeilingPart(
            f"no_residual final cosine depth {deep:g} − {shallow:g}",
            grows,
            s2,
            threshold=COS_MIN,
            expect="better",
            min_seeds=MIN_SEEDS,
            ceiling=ceiling(off_shallow["final_cos_last"], COS_MIN),
        ),
        either(
            f"no_residual stops training at depth {deep:g}",
            ctx.failure_part("failures", on_at, off_at),
            ctx.part(f"score pre_ln − no_residual, when both train ({ctx.metric})", train, s3),
        ),
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
    "cosine similarity at init (off − on) and after training (with depth).",
    probes=(COS,),
)
