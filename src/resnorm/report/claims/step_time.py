"""Step times as they were measured: one value per timer, never one per run.

The members of a pack train in one process under one StepTimer (training.callbacks), so
each member's summary carries the pack's time: the same number k times, one measurement and
not k replicates (as claims.verdicts treats identical per-seed values). Here each timer
counts once: the rows' ``step_timer`` (the pack id, or the run's own directory), and
bit-identical values count once whatever their timer (rows without one: older summaries,
sources that do not record the pack).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from resnorm.report.analysis.stats import unpaired_difference

TIMER = "step_timer"
STEP_S = "train_s_per_step"


def per_timer(runs: pd.DataFrame, value: str = STEP_S) -> pd.Series:
    """One step time per timer that measured these runs (the mean of its runs' values,
    which are one number repeated)."""
    if runs.empty or value not in runs:
        return pd.Series(dtype=float)
    runs = runs[np.isfinite(runs[value].astype(float))]
    same = runs[value].map(lambda v: f"value:{float(v)!r}")
    key = runs[TIMER].astype(object).where(runs[TIMER].notna(), same) if TIMER in runs else same
    out = runs.groupby(key)[value].mean().astype(float)
    # two timers never read bit-identical times: such values are one measurement copied
    # under another name (e.g. a source that does not record the pack)
    return out[~out.duplicated()]


def step_time_text(name: str, a: pd.DataFrame, b: pd.DataFrame) -> str:
    """a − b in seconds per step over timers (Welch; n = the smaller number of timers),
    shown and not tested."""
    ta, tb = per_timer(a), per_timer(b)
    if ta.empty or tb.empty:
        return f"{name}: no step times to compare"
    est = unpaired_difference(ta, tb)
    return (
        f"{name}: {est.text('{:.4g}')} (unpaired over timers, {len(ta)} vs {len(tb)}: the "
        f"members of a pack share one timer, so a pack counts once; not tested)"
    )
