"""``resnorm probe xiong``: Xiong et al. 2020's Fig. 3 and Theorem 1, measured and judged.

Fig. 3: per layer l, the gradient norm of the FFN second weight W^{2,l} at initialisation,
Post-LN growing toward the output, Pre-LN about flat. Summary per seed: the OLS slope of
ln(norm) against layer position 0..1 (``log_slope``). Theorem 1: the last layer's W²
gradient is O(d·sqrt(ln d)) for Post-LN, independent of depth L, and O(d·sqrt(ln d / L))
for Pre-LN. Summary per seed: the slope of ln(norm) against ln(L), predicted 0 and -0.5.

The verdict rules are constants, the same for every run: a slope counts as growth when
its mean exceeds ``MIN_SLOPE`` (the report's minimum effect for claim (a)) and its 95%
t-interval over seeds lies above 0; as flat when |mean| <= ``MIN_SLOPE``. A depth exponent
matches Theorem 1 when its mean is within ``EXPONENT_TOL`` of the predicted value.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnorm.probes.xiong import compose_config, init_profile, load_data, train_batches
from resnorm.probes.xiong_report import markdown
from resnorm.report.analysis.stats import log_slope, mean_ci

VARIANTS = ("post_ln", "pre_ln")
PREDICTED_EXPONENT = {"post_ln": 0.0, "pre_ln": -0.5}
MIN_SLOPE = 0.1
EXPONENT_TOL = 0.1
JSON_NAME, MD_NAME = "xiong.json", "xiong.md"


@dataclass(frozen=True)
class Settings:
    """``dim``/``layers``/``activation``: the paper setting (Fig. 3); ``depths``: the depth
    sweep at ``dim`` (Theorem 1); ``embedded_*``: the harness's findings-study model."""

    dim: int = 256
    layers: int = 6
    activation: str = "relu"
    heads: int = 4
    depths: tuple[int, ...] = (2, 6, 12, 24)
    seeds: int = 3
    batches: int = 20
    embedded_dim: int = 64
    embedded_depth: int = 8
    embedded_activation: str = "gelu"


def estimate(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sd and 95% t-interval over seeds (None where one seed gives none)."""
    e = mean_ci(values)
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
    ci = [e.low, e.high] if e.has_ci else None
    return {"mean": e.mean, "sd": sd, "ci95": ci, "n": e.n, "per_seed": list(values)}


def _spread(per_seed: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Column-wise mean/sd/min/max over seeds (rows)."""
    a = np.asarray(per_seed, dtype=float)
    sd = a.std(axis=0, ddof=1).tolist() if len(a) > 1 else None
    return {
        "per_seed": a.tolist(), "mean": a.mean(axis=0).tolist(), "sd": sd,
        "min": a.min(axis=0).tolist(), "max": a.max(axis=0).tolist(),
    }  # fmt: skip


def summarise_profile(per_seed: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Per-layer mean/sd/min/max over seeds, and the ln-slope across the stack."""
    return _spread(per_seed) | {"slope": estimate([log_slope(row) for row in per_seed])}


def depth_exponent(depths: Sequence[int], values: Sequence[float]) -> float:
    """OLS slope of ln(value) against ln(depth): the power of L in value ~ L^p."""
    return float(np.polyfit(np.log(depths), np.log(values), 1)[0])


def summarise_depths(
    depths: Sequence[int], profiles: Sequence[Sequence[Sequence[float]]], predicted: float
) -> dict[str, Any]:
    """``profiles[j][s]``: seed s's per-layer norms at ``depths[j]``; the last layer's norm
    per depth, its depth exponent per seed (OLS over all depths), and the local exponent
    between consecutive depths (how the exponent changes as L grows)."""
    last = np.asarray([[p[-1] for p in at_depth] for at_depth in profiles]).T  # (seeds, depths)
    exps = [depth_exponent(depths, row) for row in last] if len(depths) > 1 else []
    local = [
        {"depths": [depths[j], depths[j + 1]]}
        | estimate([depth_exponent(depths[j : j + 2], row[j : j + 2]) for row in last])
        for j in range(len(depths) - 1)
    ]
    return {
        "depths": list(depths),
        "predicted_exponent": predicted,
        "last_layer": _spread(last),
        "exponent": estimate(exps) if exps else None,
        "local_exponents": local,
        "profiles": {str(d): summarise_profile(p) for d, p in zip(depths, profiles, strict=True)},
    }


def _grows(slope: dict[str, Any]) -> bool:
    ci = slope["ci95"]
    return slope["mean"] > MIN_SLOPE and (ci is None or ci[0] > 0)


def _text(e: dict[str, Any]) -> str:
    ci = e["ci95"]
    tail = f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else " (one seed, no CI)"
    return f"{e['mean']:.3g}{tail}"


def verdicts(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, name in (("paper_setting", "paper setting"), ("embedded", "embedded setting")):
        post, pre = (result[key][v]["slope"] for v in VARIANTS)
        out += [
            {
                "statement": f"Fig. 3 ({name}): Post-LN's W² gradient grows toward the output",
                "prediction": f"ln-slope > {MIN_SLOPE}, CI above 0",
                "measured": _text(post),
                "reproduces": _grows(post),
            },
            {
                "statement": f"Fig. 3 ({name}): Pre-LN's W² gradient is about flat",
                "prediction": f"abs(ln-slope) ≤ {MIN_SLOPE}",
                "measured": _text(pre),
                "reproduces": abs(pre["mean"]) <= MIN_SLOPE,
            },
        ]
    for v, label in (("post_ln", "Post-LN: independent of L"), ("pre_ln", "Pre-LN: ~ 1/sqrt(L)")):
        e, p = result["theorem1"][v]["exponent"], PREDICTED_EXPONENT[v]
        if e is not None:
            out.append(
                {
                    "statement": f"Theorem 1, last layer's W² gradient, {label}",
                    "prediction": f"exponent of L = {p:g} ± {EXPONENT_TOL}",
                    "measured": _text(e),
                    "reproduces": abs(e["mean"] - p) <= EXPONENT_TOL,
                }
            )
    return out


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def run(
    out_dir: str | Path,
    settings: Settings = Settings(),
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> dict[str, Any]:
    """Measure every setting, write ``xiong.json`` and ``xiong.md`` to ``out_dir``, return
    what was written to the JSON."""
    t0, s = time.perf_counter(), settings
    seeds = list(range(s.seeds))
    dm = load_data(compose_config(VARIANTS[0], s.dim, 1, s.activation, heads=s.heads))
    batches = {seed: train_batches(dm, seed, s.batches) for seed in seeds}
    cache: dict[tuple, list[list[float]]] = {}

    def profiles(variant: str, dim: int, depth: int, activation: str) -> list[list[float]]:
        key = (variant, dim, depth, activation)
        if key not in cache:
            t = time.perf_counter()
            cache[key] = [
                init_profile(
                    compose_config(variant, dim, depth, activation, seed, s.heads),
                    dm,
                    batches[seed],
                )
                for seed in seeds
            ]
            log(
                f"xiong: {variant} dim={dim} depth={depth} {activation}: "
                f"{time.perf_counter() - t:.1f} s"
            )
        return cache[key]

    result: dict[str, Any] = {
        "settings": asdict(s),
        "task": "nlp_charlm",
        "seeds": seeds,
        "rules": {"min_slope": MIN_SLOPE, "exponent_tol": EXPONENT_TOL},
    }
    for key, (dim, depth, act) in (
        ("paper_setting", (s.dim, s.layers, s.activation)),
        ("embedded", (s.embedded_dim, s.embedded_depth, s.embedded_activation)),
    ):
        part = {v: summarise_profile(profiles(v, dim, depth, act)) for v in VARIANTS}
        post, pre = (part[v]["slope"]["per_seed"] for v in VARIANTS)
        part["post_minus_pre_slope"] = estimate([a - b for a, b in zip(post, pre, strict=True)])
        result[key] = {"dim": dim, "depth": depth, "activation": act, **part}
    result["theorem1"] = {
        v: summarise_depths(
            s.depths, [profiles(v, s.dim, d, s.activation) for d in s.depths], PREDICTED_EXPONENT[v]
        )
        for v in VARIANTS
    }
    result["verdicts"] = verdicts(result)
    result["machine"] = machine()
    result["wall_s"] = time.perf_counter() - t0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_NAME).write_text(json.dumps(result, indent=1) + "\n")
    (out / MD_NAME).write_text(markdown(result))
    return result
