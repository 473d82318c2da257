"""Figures of the runs table aggregated over seeds: headline vs depth, stability heatmaps
(variant x depth, variant x learning rate), and final loss across the LR grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from resnorm.report.analysis import lr_sensitivity
from resnorm.report.analysis.stats import mean_ci
from resnorm.report.analysis.table import modal_setting
from resnorm.report.figures.base import Fig, grid, metric_label, save, shared_legend, tex_safe
from resnorm.report.sources.rows import usable


def depth_figure(df: pd.DataFrame, out: Path, palette: dict[str, tuple]) -> Fig | None:
    """Headline metric vs depth, one line per variant, one panel per task."""
    tasks = sorted(usable(df)["task"].dropna().unique())
    if not tasks:
        return None
    fig, axes = grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        g = modal_setting(df, task)
        depths = sorted(g["depth"].dropna().unique())
        span = (depths[-1] - depths[0]) if len(depths) > 1 else 4.0
        n_arch = g["arch"].nunique()
        for k, (arch, a) in enumerate(g.groupby("arch")):
            pts = [(d, mean_ci(x["value"])) for d, x in a.groupby("depth")]
            dodge = (k - (n_arch - 1) / 2) * 0.012 * span  # keep error bars apart
            xs = np.array([d + dodge for d, _ in pts])
            ys = np.array([e.mean for _, e in pts])
            lo = np.array([e.mean - e.low if e.has_ci else 0.0 for _, e in pts])
            hi = np.array([e.high - e.mean if e.has_ci else 0.0 for _, e in pts])
            ax.errorbar(
                xs,
                ys,
                yerr=[lo, hi],
                marker="o",
                ms=4,
                capsize=3,
                label=tex_safe(arch),
                color=palette.get(arch),
            )
        ax.set_title(tex_safe(task))
        ax.set_xlabel("depth (blocks)")
        ax.set_ylabel(metric_label(str(g["metric"].iloc[0])) if len(g) else "")
        if depths:
            ax.set_xticks(depths)
        ax.grid(alpha=0.3)
    shared_legend(fig, axes)
    return save(
        fig,
        out,
        "depth",
        "depth",
        "Headline metric vs depth",
        "Mean over seeds with 95% t-interval (no bar: fewer than 2 seeds). Each task "
        "at its most common lr / warmup / budget.",
    )


def _heat(
    ax, mat: pd.DataFrame, title: str, cmap: str, fmt: str, vmin=None, vmax=None, robust=False
) -> None:
    data = mat.to_numpy(dtype=float)
    finite = data[np.isfinite(data)]
    if robust and len(finite) and finite.max() > 2 * np.median(finite):
        vmax = 2 * float(np.median(finite))  # one blow-up would hide every other difference
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(mat.shape[1]), [f"{c:g}" for c in mat.columns], fontsize=7)
    ax.set_yticks(range(mat.shape[0]), [tex_safe(a) for a in mat.index], fontsize=7)
    for (i, j), v in np.ndenumerate(data):
        if math.isfinite(v):
            r, g, b, _ = im.cmap(im.norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # white text on dark cells
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=6,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_title(title, fontsize=8)
    extend = "max" if vmax is not None and len(finite) and finite.max() > vmax else "neither"
    ax.figure.colorbar(im, ax=ax, shrink=0.8, extend=extend)


def heatmap_figure(df: pd.DataFrame, out: Path, axis: str, name: str, label: str) -> Fig | None:
    """Per task: variant x ``axis`` cells coloured by divergence rate and by final test loss."""
    ok = usable(df)
    tasks = [t for t, g in ok.groupby("task") if g[axis].nunique() > 1]
    if not tasks:
        return None
    height = max(3.0, sum(0.28 * ok[ok["task"] == t]["arch"].nunique() + 1.2 for t in tasks))
    # constrained: the variant names set the margins, however long they are
    fig = Figure(figsize=(10, height), layout="constrained")
    axes = fig.subplots(len(tasks), 2, squeeze=False)
    for row, task in zip(axes, tasks, strict=True):
        g = ok[ok["task"] == task]
        rate = g.pivot_table(index="arch", columns=axis, values="diverged", aggfunc="mean")
        loss = g.assign(test_loss=g["test_loss"].where(np.isfinite(g["test_loss"])))
        loss = loss.pivot_table(index="arch", columns=axis, values="test_loss", aggfunc="mean")
        name_ = tex_safe(task)
        _heat(row[0], rate.astype(float), f"{name_}: divergence rate", "Reds", "{:.2f}", 0, 1)
        _heat(row[1], loss, f"{name_}: mean final test loss (finite runs)", "viridis_r",
              "{:.2f}", robust=True)  # fmt: skip
        for ax in row:
            ax.set_xlabel(label)
    return save(
        fig,
        out,
        name,
        "stability",
        f"Stability: variant × {label}",
        "Left: fraction of seeds that diverged. Right: mean test loss of runs with a "
        "finite one; its colours saturate at twice the median cell (the numbers are exact). "
        "Pooled over the other settings.",
    )


def clamped_losses(ok: pd.DataFrame) -> pd.DataFrame:
    """``ok`` with ``clamped`` = min(test loss, L_0), L_0 the task's one clamp
    (lr_sensitivity.clamps, common to every variant): the quantity LR sensitivity averages.
    A run without a finite test loss (diverged) sits at L_0; a task without a probed init
    loss shows its finite test losses; a run with neither is left out."""
    l0 = ok["task"].map(lr_sensitivity.clamps(ok)).astype(float)
    test_loss = ok["test_loss"].where(np.isfinite(ok["test_loss"]))
    return ok.assign(clamped=np.fmin(test_loss, l0)).dropna(subset=["clamped"])


def lr_figure(df: pd.DataFrame, out: Path, palette: dict[str, tuple]) -> Fig | None:
    """Final test loss vs learning rate per variant (diverged runs shown at the clamp L_0)."""
    ok = clamped_losses(usable(df))
    tasks = [t for t, g in ok.groupby("task") if g.groupby("arch")["lr"].nunique().max() >= 3]
    if not tasks:
        return None
    fig, axes = grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        g = ok[ok["task"] == task]
        for arch, a in g.groupby("arch"):
            if a["lr"].nunique() < 3:
                continue
            m = a.groupby("lr")["clamped"].mean()
            ax.plot(
                m.index,
                m.to_numpy(),
                marker="o",
                ms=4,
                label=tex_safe(arch),
                color=palette.get(arch),
            )
            div = a[a["diverged"]]
            ax.scatter(div["lr"], div["clamped"], marker="x", color="red", zorder=3)
        ax.set_xscale("log")
        ax.set_title(tex_safe(task))
        ax.set_xlabel("learning rate")
        ax.set_ylabel("min(final test loss, L₀)")
        ax.grid(alpha=0.3)
    shared_legend(fig, axes)
    return save(
        fig,
        out,
        "lr_sweep",
        "lr",
        "Final loss across the LR grid",
        "Mean over seeds of min(final test loss, L₀), L₀ the task's one clamp (the lowest "
        "loss at init of its cells): the quantity LR sensitivity averages; red x: a "
        "diverged seed.",
    )
