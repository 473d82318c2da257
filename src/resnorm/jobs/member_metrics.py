"""How a pack's members name their logged values: member i logs ``name`` as ``m{i}/name``.

Torch-free, so that whatever reads a pack's metrics (the Lightning logger that routes them,
an Optuna pruning callback inside a trial) agrees on the one naming.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def member_key(i: int, name: str) -> str:
    """The name member ``i`` logs ``name`` under."""
    return f"m{i}/{name}"


def member_metrics(i: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {member_key(i, k): v for k, v in metrics.items()}


def split_metrics(metrics: Mapping[str, Any], k: int) -> list[dict[str, Any]]:
    """Per member: its own ``m{i}/`` values without the prefix, plus the unprefixed ones
    (what Lightning adds itself, e.g. ``epoch``); a member with no value of its own gets
    nothing."""
    shared: dict[str, Any] = {}
    own: list[dict[str, Any]] = [{} for _ in range(k)]
    for key, value in metrics.items():
        head, sep, rest = key.partition("/")
        if sep and head[:1] == "m" and head[1:].isdigit() and int(head[1:]) < k:
            own[int(head[1:])][rest] = value
        else:
            shared[key] = value
    return [{**o, **shared} if o else {} for o in own]
