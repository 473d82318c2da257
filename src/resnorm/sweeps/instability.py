"""One number for "how unstable was this run", to minimise next to accuracy.

Pure Python over summary.json (no torch), so sweeps and reports compute it the same way.
"""

from __future__ import annotations

import math
from typing import Any

from resnorm.outputs import DIVERGED


def instability_score(summary: dict[str, Any]) -> float:
    """Instability of one run, from the stability scalars of its summary.json.

    A run that diverged scores in [1, 2], earlier worse::

        1 + (1 - diverged_at_step / max_steps)

    A run that did not diverge scores in [0, 1), the mean of two saturating terms::

        spikes = r / (1 + r)   with r = loss spikes per 100 optimizer steps
        bursts = b / (1 + b)   with b = ln(grad_norm_max / grad_norm_mean)

    ``spikes`` counts the steps whose loss exceeded ``stability.spike_multiple`` x the
    running median (one spike per 100 steps gives 0.5); ``bursts`` measures how far the
    largest global gradient norm (before clipping) stood above the run's mean (a peak
    e-times the mean gives 0.5). So any diverged run is less stable than every run that
    finished, and among those, fewer loss spikes and a flatter gradient norm are better.

    Raises ValueError when the summary has no stability scalars (``stability.enabled=false``).
    """
    s = summary.get("stability") or {}
    if "spike_count" not in s:
        raise ValueError(
            f"summary of {summary.get('run_key', '?')} has no stability metrics; "
            "the instability objective needs stability.enabled=true"
        )
    if s.get("diverged") or summary.get("status") == DIVERGED:
        max_steps = planned_steps(summary)
        step = s.get("diverged_at_step") or summary.get("diverged_at_step") or 0
        return 1.0 + (1.0 - min(step, max_steps) / max_steps)
    steps = max(int(summary.get("steps") or 0), 1)
    rate = 100.0 * s["spike_count"] / steps
    gmax, gmean = s.get("grad_norm_max"), s.get("grad_norm_mean")
    burst = 0.0
    if gmax and gmean and gmax > 0 and gmean > 0 and math.isfinite(gmax / gmean):
        burst = max(0.0, math.log(gmax / gmean))
    return 0.5 * (rate / (1.0 + rate) + burst / (1.0 + burst))


def planned_steps(summary: dict[str, Any]) -> int:
    """The run's step budget (trainer.max_steps of its config), at least 1."""
    trainer = (summary.get("config") or {}).get("trainer") or {}
    return max(int(trainer.get("max_steps") or summary.get("steps") or 1), 1)
