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


def _max_logit(probe: dict[str, Any] | None) -> float:
    if not isinstance(probe, dict) or not probe.get("attn_max_logit"):
        return math.nan
    return float(np.max([np.max(h) for h in probe["attn_max_logit"]]))


def add_probe_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Columns: init_grad_slope, init_grad_spread, init/final_cos_last, init/final entropy and
    max logit; NaN where a run has no probe."""
    df = df.copy()
    init, final = df["init_probe"], df["final_probe"]
    profiles = [grad_profile(p) for p in init]
    df["init_grad_slope"] = [log_slope(p) if p else math.nan for p in profiles]
    df["init_grad_spread"] = [spread_of_log(p) if p else math.nan for p in profiles]
    df["init_cos_last"] = [_last(layer_series(p, "token_cosine")) for p in init]
    df["final_cos_last"] = [_last(layer_series(p, "token_cosine")) for p in final]
    for phase, col in (("init", init), ("final", final)):
        df[f"{phase}_attn_entropy"] = [
            float(np.mean(v)) if (v := layer_series(p, "attn_entropy")) else math.nan for p in col
        ]
        df[f"{phase}_attn_max_logit"] = [_max_logit(p) for p in col]
    return df
