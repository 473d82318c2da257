"""What a finished job means for its Optuna trial, read from the job's summary.json.

The summary (not the task function's return value) is the record: it says whether the
run completed, diverged, was pruned or failed, and holds the metrics and stability
scalars the objectives are taken from.

=============  ========================================================
summary says   trial
=============  ========================================================
completed      COMPLETE with the objective values (FAIL if one is missing)
pruned         PRUNED; ``pruned_at_step`` in user_attrs
diverged       PRUNED (``on_diverged: prune``) or FAIL (``fail``);
               ``diverged_at_step`` in user_attrs
failed         FAIL; ``error`` in user_attrs
no summary     FAIL (the job died before writing one, e.g. a bad config)
=============  ========================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from resnorm.outputs import COMPLETED, DIVERGED, FAILED, PRUNED, RUNNING, SUMMARY, write_json_atomic
from resnorm.sweeps.instability import instability_score

INSTABILITY = "instability"  # objective name computed from summary["stability"]
ON_DIVERGED = ("prune", "fail")


@dataclass(frozen=True)
class Objective:
    metric: str  # a key of summary["metrics"] (e.g. val_best/acc), or "instability"
    direction: str  # maximize | minimize


@dataclass
class TrialOutcome:
    state: TrialState
    values: list[float] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    message: str = ""


def parse_objectives(spec: Any) -> list[Objective]:
    """``[{metric: val_best/acc, direction: maximize}, ...]`` as Objectives (checked)."""
    items = [spec] if isinstance(spec, dict) else list(spec or [])
    if not items:
        raise ValueError("hydra.sweeper.objectives is empty; give at least one {metric, direction}")
    out = []
    for item in items:
        direction = str(item.get("direction", "maximize")).lower()
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"objective direction={direction!r}; allowed: maximize, minimize")
        out.append(Objective(str(item["metric"]), direction))
    return out


def read_job_summary(run_dir: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return None


def objective_value(summary: dict[str, Any], metric: str) -> float | None:
    if metric == INSTABILITY:
        return instability_score(summary)
    value = (summary.get("metrics") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def trial_attrs(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary fields worth seeing next to a trial (in the dashboard, the report)."""
    s = summary.get("stability") or {}
    attrs: dict[str, Any] = {
        "status": summary.get("status"),
        "steps": summary.get("steps"),
        "wall_s": round(float(summary.get("wall_s") or 0.0), 3),
        "metrics": {
            k: v for k, v in (summary.get("metrics") or {}).items()
            if k.startswith(("test/", "val_best/")) and isinstance(v, (int, float))
        },
    }  # fmt: skip
    for key in ("diverged_at_step", "pruned_at_step", "error"):
        value = summary.get(key, s.get(key))
        if value is not None:
            attrs[key] = value
    if "spike_count" in s:
        attrs["spike_count"] = s["spike_count"]
        attrs[INSTABILITY] = instability_score(summary)
    return attrs


def outcome_from_summary(
    summary: dict[str, Any] | None, objectives: list[Objective], on_diverged: str = "prune"
) -> TrialOutcome:
    """Map a job's summary to the state, values and user attrs to tell its trial."""
    if on_diverged not in ON_DIVERGED:
        raise ValueError(f"hydra.sweeper.on_diverged={on_diverged!r}; allowed: prune, fail")
    if summary is None:
        return TrialOutcome(TrialState.FAIL, message="the job wrote no summary.json")
    attrs = trial_attrs(summary)
    status = summary.get("status")
    if status == COMPLETED:
        values = []
        for obj in objectives:
            value = objective_value(summary, obj.metric)
            if value is None or math.isnan(value):
                missing = f"metric {obj.metric!r} is missing from the summary"
                return TrialOutcome(TrialState.FAIL, attrs=attrs, message=missing)
            values.append(value)
        return TrialOutcome(TrialState.COMPLETE, values, attrs)
    if status == PRUNED:
        at = attrs.get("pruned_at_step")
        return TrialOutcome(TrialState.PRUNED, attrs=attrs, message=f"pruned at step {at}")
    if status == DIVERGED:
        state = TrialState.PRUNED if on_diverged == "prune" else TrialState.FAIL
        at = attrs.get("diverged_at_step")
        return TrialOutcome(state, attrs=attrs, message=f"diverged at step {at}")
    message = attrs.get("error") or f"the job ended with status {status!r}"
    return TrialOutcome(TrialState.FAIL, attrs=attrs, message=str(message))


def mark_run_failed(run_dir: str | Path, reason: str) -> bool:
    """Rewrite a ``running`` summary.json as ``failed`` (its worker died); True if done."""
    summary = read_job_summary(run_dir)
    if summary is None or summary.get("status") != RUNNING:
        return False
    summary["status"] = FAILED
    summary["error"] = reason
    write_json_atomic(Path(run_dir) / SUMMARY, summary)
    return True
