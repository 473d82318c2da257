"""The trainability frontier figure: per task, the max stable learning rate against depth,
one line per variant (median over seeds, bars = range over seeds)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from resnorm.report.analysis.cells import value_text
from resnorm.report.analysis.frontier import SETTINGS, frontier_table
from resnorm.report.analysis.frontier_bar import Bar
from resnorm.report.figures.base import Fig, save, shared_legend, tex_safe

LOG_DEPTH_SPAN = 8  # depths spanning at least this factor go on a log2 axis


def _one_setting(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Rows of the setting (heads / dim / warmup / budget / ...) with the most cells, and its
    label: one figure line per architecture, never two settings pooled into one line."""
    extra = [c for c in rows.columns if c in SETTINGS]
    if not extra:
        return rows, ""
    mode = rows.groupby(extra, dropna=False).size().idxmax()
    mode = mode if isinstance(mode, tuple) else (mode,)
    mask = np.ones(len(rows), dtype=bool)
    for k, v in zip(extra, mode, strict=True):
        mask &= (rows[k] == v).to_numpy() | (rows[k].isna().to_numpy() & pd.isna(v))
    return rows[mask], ", ".join(f"{k} {value_text(v)}" for k, v in zip(extra, mode, strict=True))


def _depth_axis(ax, depths: list[float]) -> bool:
    """Depth ticks; log2 scale when the depths span a factor >= LOG_DEPTH_SPAN."""
    log = depths[0] > 0 and depths[-1] / depths[0] >= LOG_DEPTH_SPAN
    if log:
        ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [f"{d:g}" for d in depths])
    ax.minorticks_off()
    ax.set_xlabel("depth (blocks)" + (", log2 scale" if log else ""))
    return log


def frontier_figure(
    table: pd.DataFrame,
    task: str,
    out: Path,
    palette: dict[str, tuple],
) -> Fig | None:
    """Max stable LR vs depth for one task of ``frontier_table``; None without rows."""
    rows, setting = _one_setting(table[table["task"] == task]) if len(table) else (table, "")
    if rows.empty:
        return None
    grid = sorted({lr for g in rows["lr_grid"] for lr in g})
    top = grid[-1]
    none_y = grid[0] * grid[0] / grid[1]  # one grid step below the smallest LR
    depths = sorted(rows["depth"].unique())
    fig = Figure(figsize=(6.4, 4.2))
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.16, top=0.9)
    ax = fig.subplots()
    log_x = _depth_axis(ax, depths)
    span = depths[-1] - depths[0] or 1.0
    archs = sorted(rows["arch"].unique())
    for k, arch in enumerate(archs):
        a = rows[rows["arch"] == arch].sort_values("depth")
        shift = k - (len(archs) - 1) / 2  # keep the bars of variants apart
        d = a["depth"].to_numpy(dtype=float)
        x = d * 2 ** (0.03 * shift) if log_x else d + 0.012 * span * shift
        y, lo, hi = (np.nan_to_num(a[c].to_numpy(dtype=float), nan=none_y)
                     for c in ("max_lr_median", "max_lr_low", "max_lr_high"))  # fmt: skip
        color = palette.get(arch)
        ax.errorbar(x, y, yerr=[y - lo, hi - y], marker="o", ms=4, capsize=3, lw=1.2,
                    color=color, label=tex_safe(arch))  # fmt: skip
        at_top, at_none = y >= top, y <= none_y
        ax.scatter(x[at_top], y[at_top], marker="^", s=60, color=color, zorder=4)
        ax.scatter(x[at_none], y[at_none], marker="X", s=60, color=color, zorder=4)
    ax.axhline(math.sqrt(none_y * grid[0]), color="gray", lw=0.8, ls=":")
    ax.set_yscale("log")
    # the top of the grid is a lower bound: the frontier may lie beyond it
    labels = ["none", *(f"{lr:g}" for lr in grid[:-1]), f"≥{top:g}"]
    ax.set_yticks([none_y, *grid], labels)
    ax.minorticks_off()
    ax.set_ylim(none_y / 1.5, top * 1.5)
    ax.set_ylabel("max stable learning rate")
    ax.set_title(tex_safe(task) + (f" ({setting})" if setting else ""))
    ax.grid(alpha=0.3)
    shared_legend(fig, [ax])
    caption = (
        "Max stable LR: the largest grid LR up to which every grid LR succeeded; a run "
        "succeeds when it finished without diverging and reached the task's success bar, "
        f"{rows['bar_text'].iloc[0]}. Resolution: one grid step. Dot: median "
        "over seeds; bar: range over seeds; ^ on the '≥' row: the frontier lies at or beyond "
        "the largest LR; X on the 'none' row (under the dotted line): no LR of the grid "
        "succeeded."
    )
    return save(fig, out, f"frontier_{task}", "frontier", f"Trainability frontier: {task}",
                caption)  # fmt: skip


def frontier_figures(
    df: pd.DataFrame,
    out: Path,
    palette: dict[str, tuple],
    bars: dict[str, Bar] | None = None,
) -> list[Fig]:
    """One frontier figure per task that has a frontier; none when no LR grid has >= 3 LRs.
    ``bars``: each task's success bar; None reads the task configs."""
    table = frontier_table(df, bars)
    figs = [frontier_figure(table, t, out, palette) for t in sorted(table["task"].unique())]
    return [f for f in figs if f is not None]
