"""Figures of an Optuna study: the accuracy / instability trade-off and what mattered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from resnorm.report.figures import Fig, save


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
    ax.set_ylabel(score_name)
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
        ax.barh(keys, [imp[k] for k in keys], color="C0")
        ax.set_xlabel("importance (fANOVA, normalised)")
        ax.set_title(objective)
    return save(
        fig,
        out,
        name,
        "optuna",
        "Parameter importances",
        "optuna.importance.get_param_importances over completed trials.",
    )
