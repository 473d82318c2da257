"""How torch's OpenMP threads wait between parallel regions; decided before torch loads.

Spinning (the OpenMP default) is twice as fast as sleeping (``OMP_WAIT_POLICY=PASSIVE``)
for this project's small models when the cores are ours: 41 vs 21 steps/s on the 2-core
CPU. When another process keeps a core busy, a spinning thread waits for a partner that is
not scheduled and training slows by an order of magnitude, while sleeping threads lose
nothing. So: spin unless the cores are already busy when the command starts, and always
respect a policy the user set. Figures and the command that measures them:
docs/performance.md ("Thread wait policy").

The choice is recorded in the environment (``RESNORM_OMP_CHOICE``, inherited by launcher
and DDP child processes) for each run's summary.json and log: stderr carries only errors.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

SAMPLE_S = 0.2
BUSY_CORES = 0.5  # other processes' CPU use, in cores, above which threads should sleep
CHOICE_ENV = "RESNORM_OMP_CHOICE"


def cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all cores from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_cores(sample_s: float = SAMPLE_S) -> float | None:
    """Cores kept busy by other processes over ``sample_s`` while this one sleeps."""
    before = cpu_times()
    if before is None:
        return None
    time.sleep(sample_s)
    after = cpu_times()
    if after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)


def choose_wait_policy(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` when the cores are busy; return what was chosen.

    Leaves the environment alone (returns None) when the user set a policy or the cores
    are free. Call it before torch is imported: OpenMP reads the variable once, at load.
    """
    if "OMP_WAIT_POLICY" in environ:
        return None
    return "PASSIVE" if _sleep_if_busy(environ)[0] else None


def _sleep_if_busy(environ: MutableMapping[str, str]) -> tuple[bool, float | None]:
    """Sample the load; set PASSIVE when the cores are busy. (set it?, busy cores)"""
    busy = busy_cores()
    passive = busy is not None and busy >= BUSY_CORES
    if passive:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return passive, busy


def _policy_value(choice: Mapping[str, Any]) -> str | None:
    """The OMP_WAIT_POLICY value that a recorded choice leaves in the environment."""
    policy = str(choice.get("policy", ""))
    if policy.startswith("user:"):
        return policy.removeprefix("user:")
    return "PASSIVE" if policy == "PASSIVE" else None


def recorded_wait_policy(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """What ``record_wait_policy`` chose for this process or its parent, e.g.
    ``{"policy": "PASSIVE", "busy_cores": 1.3}``; without a record that matches the
    environment: the user's policy (``"user:<value>"``) or OpenMP's ``"default"``."""
    try:
        choice = json.loads(environ.get(CHOICE_ENV) or "null")
    except ValueError:
        choice = None
    if isinstance(choice, dict) and _policy_value(choice) == environ.get("OMP_WAIT_POLICY"):
        return choice
    if "OMP_WAIT_POLICY" in environ:
        return {"policy": f"user:{environ['OMP_WAIT_POLICY']}", "busy_cores": None}
    return {"policy": "default", "busy_cores": None}


def record_wait_policy(environ: MutableMapping[str, str] = os.environ) -> dict[str, Any]:
    """Choose the policy as ``choose_wait_policy`` does and record the choice, with the
    load it was based on, in ``environ[CHOICE_ENV]``. PASSIVE set by a parent ``resnorm``
    stays resnorm's choice (not the user's); anything else is decided afresh."""
    if "OMP_WAIT_POLICY" in environ:
        choice = recorded_wait_policy(environ)
    else:
        passive, busy = _sleep_if_busy(environ)
        rounded = None if busy is None else round(busy, 2)
        choice = {"policy": "PASSIVE" if passive else "default", "busy_cores": rounded}
    environ[CHOICE_ENV] = json.dumps(choice)
    return choice
