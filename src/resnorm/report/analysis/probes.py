"""Per-run numbers derived from the per-layer arrays of stability.json.

Layer profiles are reduced to one number per run so that seeds can be averaged and
compared: the growth of the init gradient norm across the stack (Xiong et al. 2020),
its spread (vanishing / exploding), the last layer's token similarity (Dong et al. 2021)
and attention entropy / max logit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from resnorm.report.analysis.stats import log_slope, spread_of_log

GRAD_KIND = "block"  # per-layer norm of all of a block's gradients: sqrt(attn² + ffn²)
TRAIN_TAIL = 5  # logged train-loss points averaged at the end: one batch's loss is noisy


def grad_profile(probe: dict[str, Any] | None, kind: str = GRAD_KIND) -> list[float] | None:
    """Per-layer gradient norms of a probe record, input side first (None if absent)."""
    if not isinstance(probe, dict):
        return None
    g = probe.get("grad_norm")
    if not isinstance(g, dict):
        return None
    values = g.get(kind) or g.get("block") or g.get("ffn")
    return [float(v) for v in values] if values else None


def layer_series(probe: dict[str, Any] | None, key: str) -> list[float] | None:
    """A per-layer list (per-head lists reduced by the mean), or None."""
    if not isinstance(probe, dict) or not probe.get(key):
        return None
    out = []
    for v in probe[key]:
        out.append(float(np.mean(v)) if isinstance(v, list) else float(v))
    return out


def cosine_profile(probe: dict[str, Any] | None) -> list[float] | None:
    """Token cosine similarity at the stack input, then after each block."""
    layers = layer_series(probe, "token_cosine")
    if layers is None:
        return None
    first = probe.get("token_cosine_input")
    return ([float(first)] if isinstance(first, int | float) else [math.nan]) + layers


def _last(values: list[float] | None) -> float:
    return values[-1] if values else math.nan


def last_log(profile: list[float] | None) -> float:
    """ln of the last (output-side) block's gradient norm; NaN when absent or not > 0."""
    last = _last(profile)
    return math.log(last) if math.isfinite(last) and last > 0 else math.nan


def _max_logit(probe: dict[str, Any] | None) -> float:
    if not isinstance(probe, dict) or not probe.get("attn_max_logit"):
        return math.nan
    return float(np.max([np.max(h) for h in probe["attn_max_logit"]]))


def final_train_loss(curve: pd.DataFrame | None) -> float:
    """Mean of the last TRAIN_TAIL logged training losses (NaN without a curve)."""
    if not isinstance(curve, pd.DataFrame) or curve.empty or "train/loss" not in curve:
        return math.nan
    return float(curve["train/loss"].tail(TRAIN_TAIL).mean())


def rms_drift(init: dict[str, Any] | None, final: dict[str, Any] | None) -> float:
    """Mean over layers of |ln(final / init)| of the residual stream's RMS: how far the
    scale of each block's input moved during training (0 = not at all)."""
    a, b = layer_series(init, "residual_rms"), layer_series(final, "residual_rms")
    if not a or not b or len(a) != len(b):
        return math.nan
    x, y = np.asarray(a), np.asarray(b)
    if np.any(x <= 0) or np.any(y <= 0) or not np.all(np.isfinite(y)):
        return math.nan
    return float(np.mean(np.abs(np.log(y / x))))


def sublayer_input_drift(init: dict[str, Any] | None, final: dict[str, Any] | None) -> float:
    """Mean over layers (and each layer's two sublayers) of |ln(final / init)| of the RMS of
    what attention and the MLP are fed, after their input norm where they have one: how far
    the scale of each sublayer's input moved during training (0 = not at all). NaN for runs
    recorded before the probe had ``sublayer_input_rms``."""
    a, b = _fed(init), _fed(final)
    if a is None or b is None or a.shape != b.shape or a.size == 0:
        return math.nan
    if np.any(a <= 0) or np.any(b <= 0) or not np.all(np.isfinite(b)):
        return math.nan
    return float(np.mean(np.abs(np.log(b / a))))


def _fed(probe: dict[str, Any] | None) -> np.ndarray | None:
    if not isinstance(probe, dict) or not probe.get("sublayer_input_rms"):
        return None
    return np.asarray(probe["sublayer_input_rms"], dtype=float)


def add_probe_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Columns: init_grad_slope, init_grad_spread, init_grad_last_ln (ln of the last block's
    gradient norm: its depth scaling is Xiong et al.'s Theorem 1), init/final_cos_last,
    init/final entropy and max logit, rms_drift, sublayer_input_drift, final_train_loss and
    gen_gap (test loss − final train loss); NaN where a run has no probe or curve."""
    df = df.copy()
    init, final = df["init_probe"], df["final_probe"]
    profiles = [grad_profile(p) for p in init]
    df["init_grad_slope"] = [log_slope(p) if p else math.nan for p in profiles]
    df["init_grad_spread"] = [spread_of_log(p) if p else math.nan for p in profiles]
    df["init_grad_last_ln"] = [last_log(p) for p in profiles]
    df["init_cos_last"] = [_last(layer_series(p, "token_cosine")) for p in init]
    df["final_cos_last"] = [_last(layer_series(p, "token_cosine")) for p in final]
    for phase, col in (("init", init), ("final", final)):
        df[f"{phase}_attn_entropy"] = [
            float(np.mean(v)) if (v := layer_series(p, "attn_entropy")) else math.nan for p in col
        ]
        df[f"{phase}_attn_max_logit"] = [_max_logit(p) for p in col]
    df["rms_drift"] = [rms_drift(a, b) for a, b in zip(init, final, strict=True)]
    pairs = zip(init, final, strict=True)
    df["sublayer_input_drift"] = [sublayer_input_drift(a, b) for a, b in pairs]
    curves = df["curve"] if "curve" in df else [None] * len(df)
    df["final_train_loss"] = [final_train_loss(c) for c in curves]
    df["gen_gap"] = df["test_loss"] - df["final_train_loss"]
    # a diverged run's losses say it blew up, not how well it generalises or how its
    # activations drifted: both are left out (NaN) rather than scored
    drifts = ["gen_gap", "rms_drift", "sublayer_input_drift"]
    df.loc[df["diverged"].astype(bool), drifts] = math.nan
    return df
