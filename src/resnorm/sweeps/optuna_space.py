"""Optuna search spaces written in Hydra's sweep syntax, over any config key.

``hydra.sweeper.params`` (and sweep overrides on the command line) use the same
grammar as a plain multirun, so a preset reads like the sweep it replaces:

=====================================  =========================================
``key: choice(a, b, c)`` / ``a,b,c``   categorical
``key: interval(lo, hi)``              float, uniform
``key: tag(log, interval(lo, hi))``    float, log-uniform
``key: tag(int, interval(lo, hi))``    int, uniform, both ends included
``key: tag(int, log, interval(lo, hi))`` int, log-uniform
``key: range(lo, hi[, step])``         ints (or floats) on a grid; ``hi`` excluded, as in Python
``key: value``                         fixed: passed unchanged to every trial
=====================================  =========================================

``tag(int, ...)`` exists because Hydra's ``interval`` turns its ends into floats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

_PLAIN = re.compile(r"^[A-Za-z_][\w\-./]*$")
_BACKSLASHES_BEFORE_QUOTE = re.compile(r"(\\+)(?='|$)")
_RESERVED = {"true", "false", "null", "nan", "inf", "none"}


@dataclass
class SearchSpace:
    """What the sampler chooses (``distributions``) and what every trial gets (``fixed``,
    as ready-made ``key=value`` override strings)."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """Override strings for one trial: the fixed ones (unless ``params`` sets the key,
        as an enqueued trial may), then its values."""
        fixed = [o for k, o in self.fixed.items() if k not in params]
        return [*fixed, *(format_override(k, v) for k, v in params.items())]


def parse_search_space(overrides: Iterable[str]) -> SearchSpace:
    """Parse ``key=<sweep or value>`` strings; a later key replaces an earlier one, so the
    command line can fix or redefine a parameter of a preset."""
    space = SearchSpace()
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.get_key_element()
        space.distributions.pop(key, None)
        space.fixed.pop(key, None)
        if override.is_sweep_override():
            space.distributions[key] = to_distribution(override)
        else:
            space.fixed[key] = f"{key}={override.get_value_element_as_str()}"
    return space


def params_as_overrides(params: Mapping[str, str]) -> list[str]:
    """``hydra.sweeper.params`` (a mapping of key to sweep text) as override strings."""
    return [f"{k}={v}" for k, v in params.items()]


def to_distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution for one sweep override (see the module docstring)."""
    key, value = override.get_key_element(), override.value()
    if isinstance(value, ChoiceSweep):
        return CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError(f"{key}: {override.input_line} is an empty range")
        step = value.step
        if all(isinstance(v, int) for v in (value.start, value.stop, step)):
            return IntDistribution(values[0], values[-1], step=step)
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(step))
    if isinstance(value, IntervalSweep):
        tags = set(value.tags)
        unknown = tags - {"log", "int"}
        if unknown:
            raise ValueError(f"{key}: unknown tag(s) {sorted(unknown)}; allowed: log, int")
        log = "log" in tags
        lo, hi = value.start, value.end
        if not lo < hi:
            raise ValueError(f"{key}: {override.input_line} is an empty range (needs low < high)")
        if "int" in tags:
            if lo != int(lo) or hi != int(hi):
                raise ValueError(f"{key}: tag(int, ...) needs integer ends, got {lo}, {hi}")
            return IntDistribution(int(lo), int(hi), log=log)
        return FloatDistribution(float(lo), float(hi), log=log)
    raise ValueError(f"{key}: {override.input_line} is not a supported search space")


def grid_values(name: str, dist: BaseDistribution) -> list[Any]:
    """Every value of a discrete distribution, for the grid sampler."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution) and not dist.log:
        return list(range(dist.low, dist.high + 1, dist.step))
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        n = int(round((dist.high - dist.low) / dist.step)) + 1
        return [dist.low + i * dist.step for i in range(n)]
    raise ValueError(
        f"the grid sampler needs discrete values, but {name} is continuous; "
        "use choice(...) or range(...)"
    )


def format_value(value: Any) -> str:
    """A Python value as Hydra override text (strings quoted when they would not read back
    as the same string)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    # Hydra reads backslashes literally except in runs that end at a quote (or the end)
    text = _BACKSLASHES_BEFORE_QUOTE.sub(lambda m: m.group(1) * 2, text)
    return "'" + text.replace("'", "\\'") + "'"


def format_override(key: str, value: Any) -> str:
    return f"{key}={format_value(value)}"
