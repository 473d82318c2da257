"""Figures drawn from each run's own arrays: per-layer init gradients, token similarity per
layer, and training curves with loss spikes and divergence marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from resnorm.report.analysis.probes import cosine_profile, grad_profile
from resnorm.report.analysis.table import modal_setting
from resnorm.report.figures.base import Fig, grid, save, shared_legend, tex_safe
from resnorm.report.sources.rows import usable

MAX_CURVE_PANELS = 28


def deepest(df: pd.DataFrame, task: str) -> tuple[float, pd.DataFrame]:
    """The task's runs at its most common setting and deepest depth (where effects show)."""
    g = modal_setting(df, task)
    if g.empty:
        return float("nan"), g
    depth = g["depth"].max()
    return depth, g[g["depth"] == depth]


def _band(ax, profiles: list[list[float]], x0: int, label: str, color, style: str = "-") -> None:
    """Mean over seeds with a min-max band; profiles of unequal length are skipped."""
    n = max(len(p) for p in profiles)
    arr = np.array([p for p in profiles if len(p) == n], dtype=float)
    x = np.arange(x0, x0 + n)
    ax.plot(x, np.nanmean(arr, axis=0), style, marker="o", ms=3, label=tex_safe(label), color=color)
    if len(arr) > 1:
        ax.fill_between(x, np.nanmin(arr, axis=0), np.nanmax(arr, axis=0), alpha=0.15, color=color)


def grad_init_figure(df: pd.DataFrame, out: Path, palette: dict[str, tuple]) -> Fig | None:
    """Per-layer gradient norm at initialisation, one line per variant (Xiong et al. 2020)."""
    tasks = [
        t
        for t in sorted(usable(df)["task"].dropna().unique())
        if deepest(df, t)[1]["init_probe"].map(grad_profile).notna().any()
    ]
    if not tasks:
        return None
    fig, axes = grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        depth, g = deepest(df, task)
        for arch, a in g.groupby("arch"):
            profiles = [p for p in a["init_probe"].map(grad_profile) if p]
            if profiles:
                _band(ax, profiles, 1, arch, palette.get(arch))
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{tex_safe(task)}, depth {depth:g}")
        ax.set_xlabel("block (1 = input side)")
        ax.set_ylabel("gradient norm at init")
        ax.grid(alpha=0.3, which="both")
    shared_legend(fig, axes)
    return save(
        fig,
        out,
        "grad_init",
        "gradients",
        "Per-layer gradient norm at initialisation",
        "Norm of each block's parameter gradients before any update, on the fixed probe "
        "batch; mean over seeds, band = min-max. Post-LN is expected to grow toward the "
        "output, Pre-LN to stay flat (Xiong et al. 2020).",
    )


def rank_collapse_figure(df: pd.DataFrame, out: Path, palette: dict[str, tuple]) -> Fig | None:
    """Token cosine similarity per layer at init and at the end; dashed = no residual."""
    tasks = [
        t
        for t in sorted(usable(df)["task"].dropna().unique())
        if deepest(df, t)[1]["init_probe"].map(cosine_profile).notna().any()
    ]
    if not tasks:
        return None
    fig, axes = grid(2 * len(tasks), ncols=2)
    for i, task in enumerate(tasks):
        depth, g = deepest(df, task)
        for ax, phase in zip(axes[2 * i : 2 * i + 2], ("init", "final"), strict=True):
            for arch, a in g.groupby("arch"):
                profiles = [p for p in a[f"{phase}_probe"].map(cosine_profile) if p]
                if not profiles:
                    continue
                style = "--" if str(a["residual"].iloc[0]) == "off" else "-"
                _band(ax, profiles, 0, arch, palette.get(arch), style)
            ax.set_ylim(-0.05, 1.05)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            phase_text = "at init" if phase == "init" else "end"
            ax.set_title(f"{tex_safe(task)}, depth {depth:g}: {phase_text}")
            ax.set_xlabel("layer (0 = stack input)")
            ax.set_ylabel("mean token cosine similarity")
            ax.grid(alpha=0.3)
    shared_legend(fig, axes)
    return save(
        fig,
        out,
        "rank_collapse",
        "rank",
        "Rank collapse: token similarity per layer",
        "Mean pairwise cosine similarity of token representations on the fixed probe "
        "batch (1 = every token identical). Dashed: residual off. Dong et al. 2021 "
        "predict collapse toward 1 with depth without residuals.",
    )


def _loss_at(curve: pd.DataFrame, steps: list[int]) -> np.ndarray:
    return np.interp(steps, curve["step"], curve["train/loss"])


def _curve_panels(df: pd.DataFrame, task: str) -> tuple[float, list[tuple[str, pd.DataFrame]]]:
    """Panels at the task's deepest depth: one per variant x (lr, warmup), any setting, so
    that LR-grid and no-warmup runs (where divergence happens) are shown too."""
    g = usable(df)
    g = g[(g["task"] == task) & g["curve"].notna()]
    if g.empty:
        return float("nan"), []
    depth = g["depth"].max()
    g = g[g["depth"] == depth]
    several = g.groupby("arch")[["lr", "warmup_steps"]].nunique().max(axis=1) > 1
    panels = []
    for (arch, lr, warmup), runs in g.groupby(["arch", "lr", "warmup_steps"], dropna=False):
        title = f"{arch} lr={lr:g} warmup={warmup:g}" if several.get(arch, False) else arch
        panels.append((title, runs))
    return depth, panels[:MAX_CURVE_PANELS]


def _loss_range(curves: list[pd.DataFrame]) -> tuple[float, float]:
    """One y scale for every panel, not stretched by a diverging run: at most 3x the
    typical first logged loss (the default divergence threshold)."""
    first = float(np.median([c["train/loss"].iloc[0] for c in curves]))
    top = min(max(float(c["train/loss"].quantile(0.99)) for c in curves), 3 * first)
    low = min(float(c["train/loss"].quantile(0.01)) for c in curves)
    pad = 0.05 * (top - low) if top > low else 0.1
    return low - pad, top + pad


def curve_figure(df: pd.DataFrame, task: str, out: Path, palette: dict[str, tuple]) -> Fig | None:
    """A panel per variant (and lr / warmup), a line per seed; orange o = loss spike, red X =
    divergence step. None when no run of ``task`` has a train/loss log."""
    depth, panels = _curve_panels(df, task)
    if not panels:
        return None
    fig, axes = grid(len(panels), ncols=4, size=(3.2, 2.4))
    calm = [r.curve for _, runs in panels for r in runs.itertuples() if not r.diverged]
    low, top = _loss_range(calm or [c for _, runs in panels for c in runs["curve"]])
    for i, (ax, (title, runs)) in enumerate(zip(axes, panels, strict=True)):
        color = palette.get(runs["arch"].iloc[0])
        for r in runs.itertuples():
            c = r.curve
            ax.plot(c["step"], c["train/loss"].clip(upper=top), lw=0.9, alpha=0.8,
                    color=color)  # fmt: skip
            if r.spike_steps:
                y = np.minimum(_loss_at(c, r.spike_steps), top)
                ax.scatter(r.spike_steps, y, s=14, facecolors="none", edgecolors="orange",
                           zorder=3)  # fmt: skip
            if r.diverged and np.isfinite(r.diverged_at_step):
                y = np.minimum(_loss_at(c, [r.diverged_at_step]), top)
                ax.scatter([r.diverged_at_step], y, marker="X", s=40, color="red", zorder=4)
        ax.set_title(tex_safe(title), fontsize=8)
        ax.set_ylim(low, top)
        ax.set_xlabel("step", fontsize=7)
        if i % 4 == 0:
            ax.set_ylabel("train loss", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    caption = ("train/loss from each run's CSV log, one line per seed, clipped at 3x the "
               "first logged loss; orange o: loss spike (above a multiple of the running "
               "median), red X: divergence step.")  # fmt: skip
    return save(fig, out, f"curves_{task}", "curves", f"Training curves: {task}, depth {depth:g}",
                caption)  # fmt: skip
