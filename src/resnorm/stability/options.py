"""The ``stability`` config group: its keys and the checks that run before training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resnorm.member_config import StabilityThresholds

# The keys of conf/stability/default.yaml that the callback takes (besides `enabled`): the
# pack's probe schedule and host-check interval, and each member's thresholds.
CALLBACK_KEYS = (
    "probes",
    "probe_every",
    "probe_batch_size",
    *StabilityThresholds.names(),
    "check_every",
)


def check_stability_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``cfg.stability``; return the callback's keyword arguments.

    Raises ValueError naming the option and what it allows, before any training.
    """
    kw = {k: options[k] for k in CALLBACK_KEYS if k in options}
    unknown = sorted(set(options) - set(CALLBACK_KEYS) - {"enabled"})
    if unknown:
        raise ValueError(
            f"stability.{unknown[0]} is not an option; allowed: enabled, {', '.join(CALLBACK_KEYS)}"
        )
    for name in ("enabled", "probes"):
        if name in options and not isinstance(options[name], bool):
            raise ValueError(f"stability.{name}={options[name]!r} must be true or false")
    for name in ("probe_every", "probe_batch_size", "check_every"):
        value = kw.get(name, 1)
        if name == "check_every" and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"stability.{name}={value!r} must be a positive integer")
    StabilityThresholds.from_config(kw)  # the thresholds' own checks
    return kw
