"""Figures from the runs table: headline vs depth, stability heatmaps, LR sweeps.

matplotlib's Agg backend through ``Figure`` objects (no pyplot global state); every
figure is written as PNG (embedded in index.html) and SVG (next to it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from resnorm.report.load import usable  # noqa: E402
from resnorm.report.stats import mean_ci  # noqa: E402
from resnorm.report.table import modal_setting  # noqa: E402

matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",
        "font.size": 9,
        "axes.titlesize": 10,
        "figure.dpi": 100,
        "savefig.dpi": 110,
    }
)


@dataclass
class Fig:
    name: str  # file stem in the report folder
    section: str  # which report section shows it
    title: str
    caption: str
    png: Path
    svg: Path


def save(fig: Figure, out: Path, name: str, section: str, title: str, caption: str) -> Fig:
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png)
    fig.set_layout_engine("none")  # keep the positions the first draw computed: no 2nd layout
    fig.savefig(svg)
    return Fig(name, section, title, caption, png, svg)


def colors(archs: Iterable[str]) -> dict[str, tuple]:
    """A stable colour per variant across every figure of a report."""
    names = sorted(set(archs))
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {a: cmap(i % cmap.N) for i, a in enumerate(names)}


def grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.2)) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def metric_label(metric: str) -> str:
    return "test bits per char (lower is better)" if metric.endswith("bpc") else "test accuracy"


def depth_figure(df: pd.DataFrame, out: Path, palette: dict[str, tuple]) -> Fig | None:
    """Headline metric vs depth, one line per variant, one panel per task."""
    tasks = sorted(usable(df)["task"].dropna().unique())
    if not tasks:
        return None
    fig, axes = grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        g = modal_setting(df, task)
        for arch, a in g.groupby("arch"):
            pts = [(d, mean_ci(x["value"])) for d, x in a.groupby("depth")]
            xs = np.array([d for d, _ in pts])
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
                label=arch,
                color=palette.get(arch),
            )
        ax.set_title(task)
        ax.set_xlabel("depth (blocks)")
        ax.set_ylabel(metric_label(str(g["metric"].iloc[0])) if len(g) else "")
        depths = sorted(g["depth"].dropna().unique())
        if depths:
            ax.set_xticks(depths)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncols=2)
    return save(
        fig,
        out,
        "depth",
        "depth",
        "Headline metric vs depth",
        "Mean over seeds with 95% bootstrap CI (no bar: fewer than 2 seeds). Each task "
        "at its most common lr / warmup / budget.",
    )


def _heat(ax, mat: pd.DataFrame, title: str, cmap: str, fmt: str, vmin=None, vmax=None) -> None:
    data = mat.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(mat.shape[1]), [f"{c:g}" for c in mat.columns], fontsize=7)
    ax.set_yticks(range(mat.shape[0]), list(mat.index), fontsize=7)
    for (i, j), v in np.ndenumerate(data):
        if math.isfinite(v):
            r, g, b, _ = im.cmap(im.norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # white text on dark cells
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=6,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_title(title, fontsize=8)
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def heatmap_figure(df: pd.DataFrame, out: Path, axis: str, name: str, label: str) -> Fig | None:
    """Per task: variant x ``axis`` cells coloured by divergence rate and by final test loss."""
    ok = usable(df)
    tasks = [t for t, g in ok.groupby("task") if g[axis].nunique() > 1]
    if not tasks:
        return None
    height = sum(0.28 * ok[ok["task"] == t]["arch"].nunique() + 1.2 for t in tasks)
    fig = Figure(figsize=(10, max(3.0, height)), layout="constrained")
    axes = fig.subplots(len(tasks), 2, squeeze=False)
    for row, task in zip(axes, tasks, strict=True):
        g = ok[ok["task"] == task]
        rate = g.pivot_table(index="arch", columns=axis, values="diverged", aggfunc="mean")
        loss = g.assign(test_loss=g["test_loss"].where(np.isfinite(g["test_loss"])))
        loss = loss.pivot_table(index="arch", columns=axis, values="test_loss", aggfunc="mean")
        _heat(row[0], rate.astype(float), f"{task}: divergence rate", "Reds", "{:.2f}", 0, 1)
        _heat(row[1], loss, f"{task}: mean final test loss (finite runs)", "viridis_r", "{:.2f}")
        for ax in row:
            ax.set_xlabel(label)
    return save(
        fig,
        out,
        name,
        "stability",
        f"Stability: variant × {label}",
        "Left: fraction of seeds that diverged. Right: mean test loss of runs with a "
        "finite one. Pooled over the other settings.",
    )


def lr_figure(df: pd.DataFrame, out: Path, palette: dict[str, tuple]) -> Fig | None:
    """Final test loss vs learning rate per variant (diverged runs shown at the init loss)."""
    ok = usable(df)
    tasks = [t for t, g in ok.groupby("task") if g["lr"].nunique() >= 3]
    if not tasks:
        return None
    fig, axes = grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        g = ok[ok["task"] == task].copy()
        clamped = np.where(
            np.isfinite(g["test_loss"]), np.minimum(g["test_loss"], g["init_loss"]), g["init_loss"]
        )
        g["clamped"] = clamped
        for arch, a in g.groupby("arch"):
            if a["lr"].nunique() < 3:
                continue
            m = a.groupby("lr")["clamped"].mean()
            ax.plot(m.index, m.to_numpy(), marker="o", ms=4, label=arch, color=palette.get(arch))
            div = a[a["diverged"]]
            ax.scatter(div["lr"], div["clamped"], marker="x", color="red", zorder=3)
        ax.set_xscale("log")
        ax.set_title(task)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("min(final test loss, init loss)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(
        fig,
        out,
        "lr_sweep",
        "lr",
        "Final loss across the LR grid",
        "Mean over seeds of min(final test loss, loss at init), the quantity LR "
        "sensitivity averages; red x: a diverged seed.",
    )


def build_all(df: pd.DataFrame, out: Path) -> list[Fig]:
    """Every figure the runs allow; sections without data produce no figure."""
    from resnorm.report import figures_runs

    palette = colors(df["arch"].dropna()) if len(df) else {}
    figs = [
        depth_figure(df, out, palette),
        heatmap_figure(df, out, "depth", "stability_depth", "depth"),
        heatmap_figure(df, out, "lr", "stability_lr", "learning rate"),
        figures_runs.grad_init_figure(df, out, palette),
        figures_runs.rank_collapse_figure(df, out, palette),
        *figures_runs.curve_figures(df, out, palette),
        lr_figure(df, out, palette),
    ]
    return [f for f in figs if f is not None]
