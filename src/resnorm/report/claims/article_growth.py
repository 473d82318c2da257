"""Claim (r), the seed article's "residual connections and LayerNorm let models grow deeper
and wider": the advantage of pre_ln (residual + LayerNorm) over plain (neither) grows with
depth, and with width where width still matters on the task.

"Wider" is only judged where the task is not saturated in width: pre_ln at the base width
must beat pre_ln at the narrower width by the minimum effect. Where it does not (both widths
solve the task alike), a difference of advantages between widths says nothing about growing
wider, and that part is not testable here — said so, with the numbers.
"""

from __future__ import annotations

import pandas as pd

from resnorm.report.analysis.stats import pair
from resnorm.report.claims.article import ARTICLE
from resnorm.report.claims.claim import BUDGET, Claim
from resnorm.report.claims.gates import Untestable, decided, untestable
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
from resnorm.report.claims.verdicts import BETTER, INCONCLUSIVE, Part

NARROW = DIM // 2  # claim (r)'s narrower cells: width 32 against the base width 64
ACROSS_WIDTHS = tuple(k for k in PAIR_KEYS if k != "dim")


def _advantage(ctx: Context, depth: float, dim: float) -> pd.DataFrame:
    """Per setting and seed at (depth, width): score(pre_ln) − score(plain), the block with
    residual and LayerNorm against the block with neither, oriented so that > 0 means
    pre_ln is better."""
    p = pair(ctx.arm("pre_ln", dim, depth=depth), ctx.arm("plain", dim, depth=depth),
             list(PAIR_KEYS), "value")  # fmt: skip
    p["gap"] = p["diff"] * ctx.sign
    return p


def width_check(ctx: Context) -> Part:
    """Whether width still matters here: score(pre_ln at the base width) − score(pre_ln at
    NARROW) at depth DEEP, paired by setting and seed when both train, decided on its own
    (1 − α) interval; 'better' means the task is not saturated in width."""
    wide = ctx.arm("pre_ln", ctx.base_dim, depth=DEEP)
    narrow = ctx.arm("pre_ln", NARROW, depth=DEEP)
    est, seeds = compare(wide, narrow, "value", ACROSS_WIDTHS)
    name = f"width check: pre_ln width {ctx.base_dim:g} − width {NARROW} at depth {DEEP}"
    return decided(ctx.part(name, est, seeds))


def claim_r(ctx: Context) -> Finding:
    f = CLAIM_R.finding(
        ctx,
        f"Advantage = score(pre_ln) − score(plain) (residual + LayerNorm vs neither), paired "
        f"by setting and seed, oriented so that > 0 means pre_ln is better. Two parts, each "
        f"an interaction per seed: (1) deeper: the advantage at depth {DEEP} − at depth "
        f"{SHALLOW} (width {DIM}); (2) wider: the advantage at width {DIM} − at width "
        f"{NARROW} (depth {DEEP}), judged only where width is not saturated: pre_ln at width "
        f"{DIM} must be better than at width {NARROW} by the minimum effect, when it trains "
        f"(its own (1−α) interval, unadjusted); otherwise part 2 is not testable on this "
        f"task and so is the claim, unless part 1 refutes it. Each part is decided from one "
        f"(1−α) interval: better iff it lies above 0 with a mean ≥ the minimum effect; parts "
        f"are Holm-adjusted when (r) is a primary claim, else exploratory. Supported iff both "
        f"are better.",
        unit=f"Δ advantage pre_ln − plain ({ctx.metric.split('/')[-1]}, > 0: grows)",
    )
    base = ctx.base_dim
    deep, shallow = _advantage(ctx, DEEP, base), _advantage(ctx, SHALLOW, base)
    narrow = _advantage(ctx, DEEP, NARROW) if base != NARROW else deep.iloc[0:0]
    deeper, s1 = compare(deep, shallow, "gap", tuple(k for k in PAIR_KEYS if k != "depth"))
    wider, s2 = compare(deep, narrow, "gap", ACROSS_WIDTHS)
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
    wide_name = f"wider: advantage at width {DIM} − width {NARROW}"
    check = width_check(ctx) if base != NARROW else None
    if check is not None:
        f.details.append(check.text())
    if check is not None and check.testable and check.outcome != BETTER:
        why = (
            f"width is saturated on this task: pre_ln at width {base:g} is not better than at "
            f"width {NARROW} by the minimum effect {ctx.min_effect:g} "
            f"({check.est.text('{:.4g}')}, {ctx.delta}, seeds={check.seeds}: {check.outcome})"
        )
        wide_part = untestable(wide_name, why, BETTER, ctx.min_effect)
    else:
        wide_part = ctx.part(wide_name, wider, s2, score=False)
    parts = [
        ctx.part(f"deeper: advantage at depth {DEEP} − depth {SHALLOW}", deeper, s1, score=False),
        wide_part,
    ]
    f = fill(f, parts, ctx)
    if f.missing and isinstance(wide_part, Untestable):  # missing runs come first
        wide_part.result = INCONCLUSIVE
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
    f"depths 2 vs 8, {BUDGET}, lr 1e-3, the embedded tasks.",
)
