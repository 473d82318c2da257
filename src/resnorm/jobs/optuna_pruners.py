"""Optuna pruners by name, from the small dict a preset writes.

``pruner: {name: median, n_warmup_steps: 20}``: every key other than ``name`` is passed
to the Optuna class, so its documentation is the reference for the options. The job
builds its own pruner (it decides inside the run); the sweeper builds it once up front
to fail early on a bad spec. Unknown names fail with the allowed ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

PRUNERS = ("median", "percentile", "hyperband", "successive_halving", "none")


def split_name(spec: Mapping[str, Any] | str | None, default: str) -> tuple[str, dict[str, Any]]:
    """``{name: x, **kwargs}`` or ``"x"`` -> (lower-case name, kwargs); None -> default."""
    if spec is None:
        return default, {}
    if isinstance(spec, str):
        return spec.lower(), {}
    kwargs = {k: v for k, v in dict(spec).items() if k != "name"}
    return str(spec.get("name", default)).lower(), kwargs


def build_pruner(spec: Mapping[str, Any] | str | None) -> optuna.pruners.BasePruner:
    """The pruner named by ``spec``; ``none`` never prunes (values are still reported)."""
    name, kw = split_name(spec, "none")
    if name == "median":
        return optuna.pruners.MedianPruner(**kw)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(**kw)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**kw)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**kw)
    if name in ("none", "nop"):
        return optuna.pruners.NopPruner()
    raise ValueError(f"hydra.sweeper.pruner.name={name!r}; allowed: {', '.join(PRUNERS)}")
