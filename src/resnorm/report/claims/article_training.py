"""Claims (o)-(r): the seed article's statements about training itself (§3.3): residual
connections speed up convergence (claims.article_convergence); LayerNorm reduces
overfitting and keeps the distribution of the layers' inputs stable during training (here);
together they let models grow deeper and wider (claims.article_growth)."""

from __future__ import annotations

import pandas as pd

from resnorm.report.analysis import failures
from resnorm.report.claims.article import ARTICLE, UNSTATED
from resnorm.report.claims.article_convergence import CLAIM_O
from resnorm.report.claims.article_growth import CLAIM_R
from resnorm.report.claims.claim import HERE, Claim
from resnorm.report.claims.needs import BASE_LR, BASE_WARMUP, HEADS, MIN_SEEDS, Cell
from resnorm.report.claims.rules import (
    PROBE_MIN_EFFECTS,
    Context,
    Finding,
    compare,
    describe,
    fill,
)

__all__ = ["CLAIM_O", "CLAIM_P", "CLAIM_Q", "CLAIM_R"]

# (p): the arms are at matched training loss when their seeds' mean final training losses
# differ by less than the gap's own minimum effect: a difference in fit smaller than the
# smallest gap difference that matters cannot by itself make one.
MATCH = PROBE_MIN_EFFECTS["gen_gap"]
# (q): the drift of what each sublayer is fed (rules.PROBE_MIN_EFFECTS: a ~10% change)
FED_DRIFT = "sublayer_input_drift"
FED_DRIFT_MIN = PROBE_MIN_EFFECTS[FED_DRIFT]


def _base(ctx: Context, arch: str, trained: bool = False) -> pd.DataFrame:
    """``arch`` at the stated setting (lr 1e-3, base warmup and heads; depth 8 via the
    claim's cells), the failed runs left out when ``trained``."""
    runs = ctx.arm(arch, lr=BASE_LR, warmup_steps=BASE_WARMUP, heads=HEADS)
    return failures.trained(runs) if trained else runs


def claim_p(ctx: Context) -> Finding:
    f = CLAIM_P.finding(
        ctx,
        f"Generalisation gap = test loss − final training loss (mean of the last 5 logged "
        f"batches), no_norm − pre_ln, the same residual stack without vs with LayerNorm, at "
        f"the stated lr {BASE_LR:g}, paired by setting and seed, when it trains (failed runs "
        f"left out). Judged only at matched training loss: the two arms' mean final "
        f"training losses must differ by less than {MATCH:g} nats (the gap's minimum "
        f"effect, so a difference in fit alone cannot make a gap difference that matters); "
        f"otherwise the claim is not testable here, with the numbers. One part, decided "
        f"from one (1−α) interval: better iff it lies above 0 with a mean ≥ {MATCH:g} nats; "
        f"Holm-adjusted when (p) is a primary claim, else exploratory.",
        unit="Δ gap (nats, no_norm − pre_ln)",
    )
    off, on = _base(ctx, "no_norm", trained=True), _base(ctx, "pre_ln", trained=True)
    train, seeds = compare(off, on, "final_train_loss")
    counts = failures.count(_base(ctx, "no_norm")), failures.count(_base(ctx, "pre_ln"))
    f.details = [
        describe(f"final train loss no_norm − pre_ln at lr {BASE_LR:g}", train, seeds),
        failures.note(*counts, ("no_norm", "pre_ln")),
    ]
    est, n = compare(off, on, "gen_gap")
    f = fill(f, [CLAIM_P.probe_part("gap no_norm − pre_ln", est, n, "gen_gap")], ctx)
    f.untestable = ctx.learned(_base(ctx, "pre_ln"))
    if not f.untestable and seeds >= MIN_SEEDS and not abs(train.mean) < MATCH:
        f.untestable = (
            f"not at matched training loss at lr {BASE_LR:g}: final train loss no_norm − "
            f"pre_ln = {train.text('{:.4g}')} nats (seeds={seeds}), |mean| ≥ {MATCH:g}, so "
            "a gap difference could come from the difference in fit alone"
        )
    return f


CLAIM_P = Claim(
    "p",
    "LayerNorm reduces overfitting",
    ARTICLE,
    needs=(Cell("pre_ln"), Cell("no_norm")),
    test=claim_p,
    paper="The seed article states it without a setting; " + HERE + ": a few hundred "
    "steps may be too few to overfit.",
    probes=("gen_gap",),
)


def _probed(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the fed-input drift column (NaN where a source never had it)."""
    return runs if FED_DRIFT in runs else runs.assign(**{FED_DRIFT: float("nan")})


def claim_q(ctx: Context) -> Finding:
    f = CLAIM_Q.finding(
        ctx,
        "Drift of each layer's input = mean over layers and their two sublayers of "
        "|ln(RMS at the end / RMS at init)| of the tensor attention and the MLP are fed "
        "(after the sublayer's norm where it has one; fixed probe batch), no_norm − pre_ln, "
        f"at lr {BASE_LR:g}, paired by setting and seed, diverged runs left out. One part, "
        f"decided from one (1−α) interval: better iff it lies above 0 with a mean ≥ "
        f"{FED_DRIFT_MIN:g} (a ~10% change of scale); Holm-adjusted when (q) is a primary "
        "claim, else exploratory. The residual stream's own drift is reported, not tested.",
        unit="Δ drift of the sublayers' inputs (no_norm − pre_ln)",
    )
    off, on = (_probed(_base(ctx, a)) for a in ("no_norm", "pre_ln"))
    stream, s = compare(off, on, "rms_drift")
    f.details = [describe("residual-stream drift no_norm − pre_ln", stream, s)]
    est, seeds = compare(off, on, FED_DRIFT)
    part = CLAIM_Q.probe_part("fed-input drift no_norm − pre_ln", est, seeds, FED_DRIFT)
    f = fill(f, [part], ctx)
    f.untestable = ctx.learned(on)
    probed = pd.concat([off, on])[FED_DRIFT].notna() if len(off) + len(on) else pd.Series()
    if len(probed) and not probed.any():  # runs recorded before the probe existed
        f.missing.append(
            f"{ctx.task}: no_norm and pre_ln runs with the sublayer-input probe "
            "(stability.json 'sublayer_input_rms'); these runs predate it"
        )
    return f


CLAIM_Q = Claim(
    "q",
    "LayerNorm keeps the distribution of the layers' inputs stable during training",
    ARTICLE,
    needs=(Cell("pre_ln"), Cell("no_norm")),
    test=claim_q,
    paper=UNSTATED,
    probes=(FED_DRIFT,),
)
