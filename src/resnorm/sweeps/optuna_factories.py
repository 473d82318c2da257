"""Samplers by name, from the small dict a preset writes.

``sampler: {name: tpe, seed: 0, ...}``: every key other than ``name`` is passed to the
Optuna class, so its documentation is the reference for the options. Unknown names fail
with the allowed ones. Pruners are built the same way, by the job that prunes
(``resnorm.jobs.optuna_pruners``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from resnorm.jobs.optuna_pruners import split_name
from resnorm.sweeps.optuna_space import grid_values

SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2", "qmc")


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


def grid_size(
    spec: Mapping[str, Any] | str | None, distributions: Mapping[str, BaseDistribution]
) -> int | None:
    """Number of points of the grid sampler's grid (a sweep ends there); None for others."""
    if split_name(spec, "tpe")[0] != "grid":
        return None
    return math.prod(len(grid_values(k, d)) for k, d in distributions.items())
