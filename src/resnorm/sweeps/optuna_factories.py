"""Samplers and pruners by name, from the small dicts a preset writes.

``sampler: {name: tpe, seed: 0, ...}`` and ``pruner: {name: median, n_warmup_steps: 20}``:
every key other than ``name`` is passed to the Optuna class, so its documentation is the
reference for the options. Unknown names fail with the allowed ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from resnorm.sweeps.optuna_space import grid_values

SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2", "qmc")
PRUNERS = ("median", "percentile", "hyperband", "successive_halving", "none")


def split_name(spec: Mapping[str, Any] | str | None, default: str) -> tuple[str, dict[str, Any]]:
    if spec is None:
        return default, {}
    if isinstance(spec, str):
        return spec.lower(), {}
    kwargs = {k: v for k, v in dict(spec).items() if k != "name"}
    return str(spec.get("name", default)).lower(), kwargs


def build_sampler(
    spec: Mapping[str, Any] | str | None,
    distributions: Mapping[str, BaseDistribution],
) -> optuna.samplers.BaseSampler:
    """The sampler named by ``spec``; the grid sampler's grid is the search space itself."""
    name, kw = split_name(spec, "tpe")
    if name == "tpe":
        return optuna.samplers.TPESampler(**kw)
    if name == "random":
        return optuna.samplers.RandomSampler(**kw)
    if name == "grid":
        grid = {k: grid_values(k, d) for k, d in distributions.items()}
        return optuna.samplers.GridSampler(grid, **kw)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(**kw)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(**kw)
    if name == "qmc":
        return optuna.samplers.QMCSampler(**kw)
    raise ValueError(f"hydra.sweeper.sampler.name={name!r}; allowed: {', '.join(SAMPLERS)}")


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


def grid_size(
    spec: Mapping[str, Any] | str | None, distributions: Mapping[str, BaseDistribution]
) -> int | None:
    """Number of points of the grid sampler's grid (a sweep ends there); None for others."""
    if split_name(spec, "tpe")[0] != "grid":
        return None
    return math.prod(len(grid_values(k, d)) for k, d in distributions.items())
