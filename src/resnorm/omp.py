"""How torch's OpenMP threads wait between parallel regions; decided before torch loads.

Spinning (the OpenMP default) is twice as fast as sleeping (``OMP_WAIT_POLICY=PASSIVE``)
for this project's small models when the cores are ours: 41 vs 21 steps/s on the 2-core
CPU. When another process keeps a core busy, a spinning thread waits for a partner that is
not scheduled and training slows by an order of magnitude, while sleeping threads lose
nothing. So: spin unless the cores are already busy when the command starts, and always
respect a policy the user set. Figures and the command that measures them:
docs/performance.md ("Thread wait policy").
"""

from __future__ import annotations

import os
import time

SAMPLE_S = 0.2
BUSY_CORES = 0.5  # other processes' CPU use, in cores, above which threads should sleep


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


def choose_wait_policy(environ: os._Environ[str] | dict[str, str] = os.environ) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` when the cores are busy; return what was chosen.

    Leaves the environment alone (returns None) when the user set a policy or the cores
    are free. Call it before torch is imported: OpenMP reads the variable once, at load.
    """
    if "OMP_WAIT_POLICY" in environ:
        return None
    busy = busy_cores()
    if busy is None or busy < BUSY_CORES:
        return None
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"
