"""The text a sweep prints at its end: trial counts, then the best trial (one objective)
or the Pareto front (several), each with its parameters and run directory."""

from __future__ import annotations

from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return dict(sorted(counts.items()))


def format_trial(t: FrozenTrial, names: list[str]) -> str:
    values = " ".join(f"{n}={v:.4g}" for n, v in zip(names, t.values or [], strict=False))
    params = " ".join(f"{k}={_short(v)}" for k, v in t.params.items())
    where = t.user_attrs.get("run_dir", "")
    return f"  #{t.number:<4d} {values}  {params}  {where}".rstrip()


def _short(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_results(study: optuna.Study, names: list[str]) -> str:
    """Counts by state, then the best trial or the Pareto front (sorted by the first objective)."""
    counts = state_counts(study)
    lines = [
        f"study {study.study_name!r}: {sum(counts.values())} trials ("
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + ")"
    ]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        lines.append("  no completed trial yet")
        return "\n".join(lines)
    if len(study.directions) == 1:
        lines.append(f"best ({study.direction.name.lower()} {names[0]}):")
        lines.append(format_trial(study.best_trial, names))
        return "\n".join(lines)
    front = sorted(study.best_trials, key=lambda t: t.values[0])
    dirs = ", ".join(f"{d.name.lower()} {n}" for d, n in zip(study.directions, names, strict=True))
    lines.append(f"Pareto front ({len(front)} of {len(complete)} completed; {dirs}):")
    lines.extend(format_trial(t, names) for t in front)
    return "\n".join(lines)
