"""An Optuna study's section of the report: trial counts and objectives, the Pareto front
of score vs instability, parameter importances, and their figures."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from resnorm.report.figures.base import Fig, safe_filename, save, tex_safe

INSTABILITY = "instability"


@dataclass
class OptunaSection:
    study: str
    storage: str
    lines: list[str]  # facts: trials by state, directions, importances or why none
    figs: list[Fig] = field(default_factory=list)


def _instability(trial: Any, names: list[str]) -> float:
    if INSTABILITY in names and trial.values:
        return float(trial.values[names.index(INSTABILITY)])
    value = (trial.user_attrs or {}).get(INSTABILITY)
    return float(value) if isinstance(value, int | float) else math.nan


def objective_names(study: Any) -> list[str]:
    names = list(getattr(study, "metric_names", None) or [])
    return names or [f"objective {i}" for i in range(len(study.directions))]


def pareto_mask(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Points no other point beats on both (higher score, lower cost)."""
    keep = np.ones(len(score), dtype=bool)
    for i in range(len(score)):
        better = (score >= score[i]) & (cost <= cost[i]) & ((score > score[i]) | (cost < cost[i]))
        keep[i] = not better.any()
    return keep


def sections(studies: list[Any], out: Path) -> list[OptunaSection]:
    return [study_section(s, out) for s in studies]


def study_section(study: Any, out: Path) -> OptunaSection:
    """Facts, Pareto front and importances of one study (each only when the data allow)."""
    trials = study.get_trials(deepcopy=False)
    names = objective_names(study)
    counts = Counter(t.state.name.lower() for t in trials)
    dirs = ", ".join(f"{d.name.lower()} {n}" for d, n in zip(study.directions, names, strict=True))
    sec = OptunaSection(
        study.study_name,
        "",
        [
            f"{len(trials)} trials: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
            f"objectives: {dirs}",
        ],
    )
    done = [t for t in trials if t.state.name == "COMPLETE" and t.values]
    score_idx = next((i for i, n in enumerate(names) if n != INSTABILITY), 0)
    maximize = study.directions[score_idx].name == "MAXIMIZE"
    pts = [(t.values[score_idx], _instability(t, names), t.number) for t in done]
    pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
    safe = safe_filename(study.study_name)
    if len(pts) >= 2:
        score = np.array([p[0] if maximize else -p[0] for p in pts])
        cost = np.array([p[1] for p in pts])
        front = pareto_mask(score, cost)
        sec.lines.append(
            f"Pareto front ({names[score_idx]} vs instability): trials "
            + ", ".join(f"#{p[2]}" for p, f in zip(pts, front, strict=True) if f)
        )
        sec.figs.append(pareto_figure(pts, front, names[score_idx], out, f"pareto_{safe}"))
    else:
        sec.lines.append(
            "Pareto front: needs ≥ 2 completed trials with an instability value "
            "(objective or user attr 'instability')"
        )
    sec.lines += importances(study, done, names, out, safe, sec.figs)
    return sec


def importances(
    study: Any, done: list, names: list[str], out: Path, safe: str, figs: list
) -> list[str]:
    """optuna.importance (fANOVA) per objective; a study too small for it is said so."""
    import optuna  # lazy: reports without a storage never load optuna

    params = {k for t in done for k in t.params}
    varied = [p for p in params if len({repr(t.params.get(p)) for t in done}) > 1]
    if len(done) < 4 or not varied:
        return [
            f"parameter importances: not computed ({len(done)} completed trials, "
            f"{len(varied)} varied parameters; needs ≥ 4 and ≥ 1)"
        ]
    lines, result = [], {}
    for i, name in enumerate(names):
        try:
            imp = optuna.importance.get_param_importances(
                study, target=(lambda t, i=i: t.values[i]) if len(names) > 1 else None
            )
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            lines.append(f"parameter importances for {name}: not computed ({exc})")
            continue
        result[name] = imp
        lines.append(
            f"parameter importances for {name} (fANOVA): "
            + ", ".join(f"{k} {v:.2f}" for k, v in imp.items())
        )
    if result:
        figs.append(importance_figure(result, out, f"importance_{safe}"))
    return lines


def pareto_figure(
    pts: list[tuple[float, float, int]], front: np.ndarray, score_name: str, out: Path, name: str
) -> Fig:
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    score = np.array([p[0] for p in pts])
    cost = np.array([p[1] for p in pts])
    ax.scatter(cost[~front], score[~front], s=18, color="0.6", label="trial")
    order = np.argsort(cost[front])
    ax.plot(cost[front][order], score[front][order], "o-", color="C3", ms=5, label="Pareto front")
    for (s, c, n), f in zip(pts, front, strict=True):
        if f:
            ax.annotate(f"#{n}", (c, s), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("instability (0 = smooth, ≥ 1 = diverged)")
    ax.set_ylabel(tex_safe(score_name))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save(
        fig,
        out,
        name,
        "optuna",
        "Pareto front: score vs instability",
        "Completed trials; the front holds the trials no other trial beats on both axes. "
        "Instability as defined in resnorm.sweeps.instability (diverged runs score 1-2).",
    )


def importance_figure(result: dict[str, dict[str, float]], out: Path, name: str) -> Fig:
    fig = Figure(
        figsize=(5.5 * len(result), 0.35 * max(len(v) for v in result.values()) + 1.5),
        layout="constrained",
    )
    axes = fig.subplots(1, len(result), squeeze=False)[0]
    for ax, (objective, imp) in zip(axes, result.items(), strict=True):
        keys = list(imp)[::-1]
        ax.barh([tex_safe(k) for k in keys], [imp[k] for k in keys], color="C0")
        ax.set_xlabel("importance (fANOVA, normalised)")
        ax.set_title(tex_safe(objective))
    return save(
        fig,
        out,
        name,
        "optuna",
        "Parameter importances",
        "optuna.importance.get_param_importances over completed trials.",
    )
