"""Claims (d), (e), (g), (h): what the literature says replaces or repairs a norm or the
skip path (ReZero, DeepNorm, DyT, RMSNorm) is as good as the standard block."""

from __future__ import annotations

import pandas as pd

from resnorm.report.analysis.stats import NONE
from resnorm.report.claims.claim import HERE, OWN_LR, Claim
from resnorm.report.claims.lr_selection import lr_text, own_best_arms, protocol_text
from resnorm.report.claims.needs import BASE_LR, DEEP, Cell, lr_grid
from resnorm.report.claims.rules import (
    DEEP_MIN,
    EQUIVALENT,
    NOT_WORSE,
    Context,
    Finding,
    Part,
    compare,
    describe,
    fill,
    no_deep,
    shared_depths,
)


def claim_d(ctx: Context) -> Finding:
    f = CLAIM_D.finding(
        ctx,
        f"Non-inferiority at the deepest depth rezero and pre_ln share (≥ {DEEP_MIN}), "
        f"{protocol_text()}: score(rezero) − score(pre_ln), paired by seed. Supported iff "
        f"rezero is not worse by the margin ({ctx.margin:g} {ctx.metric}; one-sided t-test "
        f"of non-inferiority, Holm).",
        unit=ctx.delta,
    )
    arms = own_best_arms(ctx, "rezero", "pre_ln", min_depth=DEEP_MIN, deepest=True)
    if not arms.depth >= DEEP_MIN:
        f.details = [*arms.details, no_deep("rezero", "pre_ln")]
        return fill(f, [ctx.part("rezero − pre_ln", NONE, 0, NOT_WORSE)], ctx)
    est, seeds = compare(arms.a, arms.b, "value", arms.keys)
    nn = own_best_arms(ctx, "rezero", "no_norm", min_depth=DEEP_MIN, deepest=True)
    vs_nn, s2 = compare(nn.a, nn.b, "value", nn.keys)
    rz = arms.a
    # no_norm's lr (rezero's is above); its fallback note only if the headline had none
    extra = nn.details[1::2] if nn.own_lr else nn.details if arms.own_lr else []
    f.details = [
        *arms.details,
        *extra,
        describe(f"rezero − no_norm at {nn.where}", vs_nn, s2),
        f"rezero divergence rate at its lr: {rz['diverged'].mean():.2f} (n={len(rz)})",
    ]
    f = fill(f, [ctx.part(f"rezero − pre_ln at {arms.where}", est, seeds, NOT_WORSE)], ctx)
    f.untestable = ctx.learned(arms.b)
    f.caveat = "" if arms.own_lr else BASE_LR_ONLY
    return f


CLAIM_D = Claim(
    "d",
    "ReZero trains deep stacks without normalization",
    "Bachlechner et al. 2020",
    # each variant at its own best lr of the grid, chosen on validation
    needs=lr_grid("rezero", "pre_ln", "no_norm"),
    test=claim_d,
    paper="Bachlechner et al. 2020: 12–128 layers on enwik8 (d = 256–512), each model at "
    "its own tuned lr; " + OWN_LR + ".",
)


FAILS = 0.5  # Post-LN "fails" at a depth where half its seeds diverge or it did not learn


def _post_ln_fails(ctx: Context, post: pd.DataFrame) -> bool:
    return bool(ctx.learned(post)) or float(post["diverged"].mean()) >= FAILS


def claim_e(ctx: Context) -> Finding:
    f = CLAIM_E.finding(
        ctx,
        "Judged at the depths where plain Post-LN fails (half its seeds diverge, or its "
        "mean closes less than a quarter of the gap from chance to perfect) and both have a "
        "complete cell: score(deepnorm) − score(post_ln), paired by setting and seed. "
        "Supported iff deepnorm is better by the minimum effect (one-sided t-test, Holm). "
        "If Post-LN trains at every depth tested, the claim is inconclusive: run deeper.",
        unit=ctx.delta,
    )
    depths = shared_depths(ctx, "deepnorm", "post_ln")
    failing = [d for d in depths if _post_ln_fails(ctx, ctx.arm("post_ln", depth=d))]
    rates = [f"{d:g}: {ctx.arm('post_ln', depth=d)['diverged'].mean():.2f}" for d in depths]
    f.details = [f"post_ln divergence rate by depth: {', '.join(rates) or 'no complete depth'}"]
    if not failing:
        f.details.append(
            f"post_ln trains at every depth tested ({', '.join(f'{d:g}' for d in depths)}): "
            "the claim is about depths where it fails"
        )
        return fill(f, [ctx.part("deepnorm − post_ln", NONE, 0)], ctx)
    dn = ctx.arm("deepnorm")[lambda g: g["depth"].isin(failing)]
    post = ctx.arm("post_ln")[lambda g: g["depth"].isin(failing)]
    # the claim is about training where post_ln fails: its failed runs count in the score
    est, seeds = compare(dn, post, "value", when_trained=False)
    at = ", ".join(f"{d:g}" for d in failing)
    parts = [
        ctx.part(f"deepnorm − post_ln at depth {at}", est, seeds),
        ctx.failure_part(f"failures at depth {at}", dn, post),
    ]
    return fill(f, parts, ctx)


# shown with a verdict reached without the own-best-lr protocol (its grid incomplete)
BASE_LR_ONLY = f"both at lr {lr_text(BASE_LR)} only: LR grid incomplete"

E_DEPTHS = (DEEP, 16, 32)  # the depths at which plain Post-LN may fail; (e) is judged where it does

CLAIM_E = Claim(
    "e",
    "DeepNorm trains Post-LN deeper than plain Post-LN",
    "Wang et al. 2022",
    needs=tuple(Cell(a, depth=d) for a in ("deepnorm", "post_ln") for d in E_DEPTHS),
    test=claim_e,
    paper="Wang et al. 2022: 200–1000 layers (d = 512–1024), translation, where Post-LN "
    "diverges from about 18 layers; " + HERE + ", judged at those of depths 8, 16, 32 where "
    "Post-LN fails here.",
)


def _equivalence_part(ctx: Context, f: Finding, arch: str, ref: str) -> Part:
    est, seeds = compare(ctx.arm(arch), ctx.arm(ref), "value")
    f.untestable = ctx.learned(ctx.arm(ref))
    return ctx.part(f"{arch} − {ref}", est, seeds, EQUIVALENT)


def _equivalence_test(ctx: Context, arch: str, ref: str) -> str:
    return (
        f"Equivalence: score({arch}) − score({ref}), paired by setting and seed, each seed "
        f"averaged over the complete settings. Supported iff TOST shows the difference "
        f"within ±{ctx.margin:g} {ctx.metric} (Holm); 'better' or 'worse' refute it."
    )


def claim_g(ctx: Context) -> Finding:
    f = CLAIM_G.finding(
        ctx,
        f"Equivalence, {protocol_text()}: score(dyt_pre) − score(pre_ln), paired by seed, "
        f"each seed averaged over the settings where both have a complete grid. Supported "
        f"iff TOST shows the difference within ±{ctx.margin:g} {ctx.metric} (Holm); "
        f"'better' or 'worse' refute it.",
        unit=ctx.delta,
    )
    arms = own_best_arms(ctx, "dyt_pre", "pre_ln")
    est, seeds = compare(arms.a, arms.b, "value", arms.keys)
    f.details = list(arms.details)
    f = fill(f, [ctx.part(f"dyt_pre − pre_ln at {arms.where}", est, seeds, EQUIVALENT)], ctx)
    f.untestable = ctx.learned(arms.b)
    f.caveat = "" if arms.own_lr else BASE_LR_ONLY
    return f


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
        "times the norms at widths 512–4096 on the device at hand (docs/performance.md); "
        "the step times of these dim-64 runs are shown, not tested.",
        unit=ctx.delta,
    )
    same = _equivalence_part(ctx, f, "rmsnorm_pre", "pre_ln")
    cost, seeds = compare(ctx.arm("rmsnorm_pre"), ctx.arm("pre_ln"), "train_s_per_step")
    f.details = [describe("train s/step rmsnorm − layernorm (dim 64)", cost, seeds)]
    return fill(f, [same], ctx)


CLAIM_H = Claim(
    "h",
    "RMSNorm matches LayerNorm (its cost: resnorm bench norm)",
    "Zhang & Sennrich 2019",
    needs=(Cell("rmsnorm_pre"), Cell("pre_ln")),
    test=claim_h,
    paper="Zhang & Sennrich 2019: translation models (d = 512) timed on GPUs; " + HERE + "; "
    "the cost is timed by `resnorm bench norm` at widths 512–4096.",
)
