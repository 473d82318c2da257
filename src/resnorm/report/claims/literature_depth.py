"""Claims (d), (e): what lets a stack train deeper than its baseline (ReZero without a norm,
DeepNorm for Post-LN), judged at a depth where the baseline fails (claims.failing_depth)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from resnorm.report.analysis import failures
from resnorm.report.claims.claim import BUDGET, Claim
from resnorm.report.claims.failing_depth import (
    FAILS,
    JUDGE_KEYS,
    JUDGE_SEEDS,
    SELECT_SEEDS,
    Combo,
    Pick,
    combo_text,
    combos,
    failing_depth,
    must_fail_less,
    pick_pair,
    seeds_text,
    untested,
)
from resnorm.report.claims.lr_selection import grid_text, lr_text
from resnorm.report.claims.needs import BASE_LR, LR_GRID, Cell, lr_grid
from resnorm.report.claims.rules import (
    DEEP_MIN,
    NOT_WORSE,
    Context,
    Finding,
    compare,
    describe,
    fill,
)

# How a part is decided (claims.verdicts), for the tests' text.
DECISION = (
    "Each part is decided from one (1 − α) interval (a failure part from its exact test's "
    "p); the parts of the study's primary claims are Holm-adjusted together, the others are "
    "exploratory (unadjusted)."
)
FAILED = "diverged, or closing less than a quarter of the gap from chance to perfect"


def _selection_text(base: str, grid: str) -> str:
    return (
        f"At each depth it has runs, {base} is taken at its own best {grid}, chosen on "
        f"validation (a diverged run scores chance; lr {lr_text(BASE_LR)} where that grid is "
        f"incomplete, and the finding says so). The depth judged is the one where {base} "
        f"fails ({FAILED}) most often on {seeds_text(SELECT_SEEDS)}, if on at least "
        f"{FAILS:.0%} of them (ties: the deeper); those seeds choose the depth and the "
        f"verdict uses {seeds_text(JUDGE_SEEDS)} only."
    )


def _caveat(picks: Sequence[Pick]) -> str:
    """Which arms are judged without their own-best protocol (their grid incomplete)."""
    base = [p.arch for p in picks if not p.own]
    if not base:
        return ""
    return f"{', '.join(base)} at lr {lr_text(BASE_LR)} only: grid incomplete at that depth"


def _where(a: Pick, b: Pick) -> str:
    """e.g. 'own best lr (rezero 1e-2, pre_ln 1e-3)'."""
    lrs = ", ".join(f"{p.arch} {combo_text(p.combo).removeprefix('lr ')}" for p in (a, b))
    return f"own best lr ({lrs})" if a.own and b.own else f"lr ({lrs}; a grid incomplete)"


# (d): every arm at its own best lr of the grid at each depth (warmup at the base)
D_GRID: tuple[Combo, ...] = combos(LR_GRID)
D_DEEP = 32  # the depth (e) runs, where Post-LN fails: rezero, no_norm, pre_ln at lr 1e-3


def claim_d(ctx: Context) -> Finding:
    f = CLAIM_D.finding(
        ctx,
        f"Judged at a depth (≥ {DEEP_MIN}) where no_norm fails. "
        + _selection_text("no_norm", f"learning rate from {grid_text()}")
        + f" Parts at that depth, rezero and pre_ln each at its own best lr there (both at "
        f"lr {lr_text(BASE_LR)} where either grid is incomplete): (1) score(rezero) "
        f"− score(pre_ln), paired by seed, when it trains (seeds where both trained): not "
        f"worse by the margin ({ctx.margin:g} {ctx.metric}); (2) rezero fails less often than "
        f"no_norm (Fisher's exact test on failed seeds; must be shown, not merely not "
        f"contradicted). " + DECISION + " Supported iff both parts support it. If no_norm "
        "fails at none of the depths run, the claim is not testable at those depths.",
        unit=ctx.delta,
    )
    depth, picks, lines = failing_depth(ctx, "no_norm", D_GRID, DEEP_MIN)
    if not math.isfinite(depth):
        f.details = lines
        return untested(fill(f, [], ctx), ctx, "no_norm", picks)
    nn = next(p for p in picks if p.depth == depth)
    rz, ref = pick_pair(ctx, "rezero", "pre_ln", depth, D_GRID)
    est, seeds = compare(rz.judged, ref.judged, "value", JUDGE_KEYS)
    at = f"depth {depth:g}, {seeds_text(JUDGE_SEEDS)}"
    parts = [
        ctx.part(f"rezero − pre_ln at {at}, {_where(rz, ref)}", est, seeds, NOT_WORSE),
        must_fail_less(f"failures at {at}", rz.judged, nn.judged, ("rezero", "no_norm")),
    ]
    div = rz.judged["diverged"]
    f.details = [
        *lines,
        rz.text,
        ref.text,
        f"rezero divergence rate at its lr: {div.mean():.2f} (n={len(div)})",
    ]
    f = fill(f, parts, ctx)
    f.untestable = ctx.learned(ref.judged)
    f.caveat = _caveat((nn, rz, ref))
    return f


CLAIM_D = Claim(
    "d",
    "ReZero trains deep stacks without normalization",
    "Bachlechner et al. 2020",
    # the lr grid at depth 8; at depth 32 the base lr only (a grid there: 4x the cost)
    needs=lr_grid("rezero", "pre_ln", "no_norm")
    + tuple(Cell(a, depth=D_DEEP) for a in ("rezero", "pre_ln", "no_norm")),
    test=claim_d,
    paper="Bachlechner et al. 2020: 12–128 layers on enwik8 (d = 256–512), each model at "
    "its own tuned lr; here: width 64, depths 8 (lr grid 1e-4 … 1e-1) and 32 (lr 1e-3), "
    f"{BUDGET}, judged at the depth where no_norm fails.",
)


# (e): Post-LN and DeepNorm each at its own best lr and warmup at each depth; a small grid,
# lower lrs being what a deep Post-LN stack would need
E_LRS, E_WARMUPS = (3e-4, 1e-3), (50,)
E_GRID: tuple[Combo, ...] = combos(E_LRS, E_WARMUPS)
E_DEPTHS = (16, 32)  # the depths at which plain Post-LN may fail; judged where it does


def claim_e(ctx: Context) -> Finding:
    grid = f"lr from {grid_text(E_LRS)} and warmup from {', '.join(map(str, E_WARMUPS))}"
    f = CLAIM_E.finding(
        ctx,
        "Judged at a depth where plain Post-LN fails. "
        + _selection_text("post_ln", grid)
        + " Headline at that depth, deepnorm and post_ln each at its own best lr and warmup "
        f"there (both at lr {lr_text(BASE_LR)} where either grid is incomplete): "
        "deepnorm fails less often than post_ln (Fisher's exact test on failed seeds; must be "
        "shown, not merely not contradicted). " + DECISION + " score(deepnorm) − "
        "score(post_ln) when both train is shown, not tested (where post_ln always fails "
        "there is nothing to pair). If post_ln fails at none of the depths run, the claim is "
        "not testable at those depths.",
        unit=ctx.delta,
    )
    depth, picks, lines = failing_depth(ctx, "post_ln", E_GRID)
    if not math.isfinite(depth):
        f.details = lines
        return untested(fill(f, [], ctx), ctx, "post_ln", picks)
    chosen = next(p for p in picks if p.depth == depth)
    dn, post = pick_pair(ctx, "deepnorm", "post_ln", depth, E_GRID)
    at = f"depth {depth:g}, {seeds_text(JUDGE_SEEDS)}"
    head = must_fail_less(f"failures at {at}", dn.judged, post.judged, ("deepnorm", "post_ln"))
    est, seeds = compare(dn.judged, post.judged, "value", JUDGE_KEYS)
    both = f"deepnorm − post_ln at {at}, {_where(dn, post)}, when both train"
    counts = failures.count(dn.judged), failures.count(post.judged)
    none = f"{both}: no seed where both trained ({failures.note(*counts, ('deepnorm', 'post_ln'))})"
    trained = describe(both, est, seeds) if est.n else none
    f.details = [*lines, dn.text, *([post.text] if post.text != chosen.text else []), trained]
    f = fill(f, [head], ctx)
    f.n = head.seeds  # the headline is on counts: its n is the seeds counted
    f.caveat = _caveat((post, dn))
    return f


CLAIM_E = Claim(
    "e",
    "DeepNorm trains Post-LN deeper than plain Post-LN",
    "Wang et al. 2022",
    needs=tuple(
        Cell(a, depth=d, lr=lr, warmup=int(w))
        for a in ("deepnorm", "post_ln")
        for d in E_DEPTHS
        for lr, w in E_GRID
    ),
    test=claim_e,
    paper="Wang et al. 2022: 200–1000 layers (d = 512–1024), translation, where Post-LN "
    "diverges from about 18 layers; here: width 64, depths 16 and 32, lr 3e-4 or 1e-3 "
    f"(warmup 50), {BUDGET}, judged at the depth where Post-LN fails.",
)
