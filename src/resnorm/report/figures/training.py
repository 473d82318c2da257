"""Curves over training from each run's CSV log, per task: the training loss per run
(``per_run.curve_figure``), the validation metric and the stability quantities (gradient
norm, update-to-weight ratio, residual RMS) per variant as a mean over seeds with a min-max
band, and the learning-rate schedule where the runs' schedules differ."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from resnorm.report.figures.base import Fig, grid, save, shared_legend, tex_safe
from resnorm.report.figures.per_run import curve_figure
from resnorm.report.sources.rows import usable

MAX_VAL_PANELS = 6  # lr / warmup cells with a validation panel, most runs first
MAX_STABILITY_ROWS = 3  # ... with a row of stability panels
LOG_SPAN = 10  # a panel whose values span this factor or more gets a log y axis
# train_log column, axis label (all positive)
QUANTITIES = (
    ("grad_norm", "gradient norm"),
    ("update_ratio", "update / weight ratio"),
    ("residual_rms", "residual RMS"),
)
BAND = (
    "line: mean over the seeds logged at that step, band: min–max over them (a diverged "
    "run's line ends where it diverged)"
)


def _cells(
    df: pd.DataFrame, task: str, column: str
) -> tuple[float, list[tuple[str, pd.DataFrame]]]:
    """The task's runs that have a ``column`` log, at its deepest depth (most common width
    and step budget): one (label, runs) per lr / warmup cell, most runs first."""
    g = usable(df)
    g = g[(g["task"] == task) & g[column].notna()] if len(g) else g
    for key in ("dim", "max_steps"):
        if len(g) and g[key].notna().any():
            g = g[g[key] == g[key].mode().iloc[0]]
    if g.empty:
        return math.nan, []
    depth = g["depth"].max()
    g = g[g["depth"] == depth]
    cells = sorted(
        g.groupby(["lr", "warmup_steps"], dropna=False),
        key=lambda kv: (-len(kv[1]), kv[0][0], kv[0][1]),
    )
    return depth, [(f"lr {lr:g}, warmup {w:g}", runs) for (lr, w), runs in cells]


def _band(ax, logs: list[pd.DataFrame], col: str, arch: str, color, positive: bool) -> list:
    """Mean over seeds and a min-max band of ``col`` vs step (steps joined over seeds);
    returns the values drawn."""
    series = [c.set_index("step")[col].dropna() for c in logs if c is not None and col in c]
    series = [s[s > 0] if positive else s for s in series]
    series = [s for s in series if len(s)]
    if not series:
        return []
    m = pd.concat(series, axis=1).sort_index()
    steps = m.index.to_numpy(dtype=float)
    ax.plot(steps, m.mean(axis=1), lw=1.2, color=color, label=tex_safe(arch))
    if len(series) > 1:
        ax.fill_between(steps, m.min(axis=1), m.max(axis=1), alpha=0.15, color=color, lw=0)
    return [float(v) for s in series for v in s]


def val_curves_figure(
    df: pd.DataFrame, task: str, out: Path, palette: dict[str, tuple]
) -> Fig | None:
    """Validation metric vs step, a line per variant, a panel per lr / warmup cell."""
    depth, cells = _cells(df, task, "val_curve")
    if not cells:
        return None
    cells = cells[:MAX_VAL_PANELS]
    metric = str(cells[0][1]["val_curve"].iloc[0].columns[1])
    fig, axes = grid(len(cells))
    for ax, (label, runs) in zip(axes, cells, strict=True):
        for arch, a in runs.groupby("arch"):
            _band(ax, list(a["val_curve"]), metric, arch, palette.get(arch), positive=False)
        ax.set_title(f"{tex_safe(task)}: {label}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(metric + (" (lower is better)" if metric.endswith("bpc") else ""))
        ax.grid(alpha=0.3)
    shared_legend(fig, axes)
    caption = (f"{metric} at each validation step from each run's CSV log, depth {depth:g}, "
               f"one panel per lr / warmup cell (at most {MAX_VAL_PANELS}); {BAND}.")  # fmt: skip
    return save(fig, out, f"val_curves_{task}", "curves",
                f"Validation curves: {task}, depth {depth:g}", caption)  # fmt: skip


def stability_curves_figure(
    df: pd.DataFrame, task: str, out: Path, palette: dict[str, tuple]
) -> Fig | None:
    """Gradient norm, update ratio and residual RMS vs step (whichever the logs have), a
    line per variant; a row per lr / warmup cell."""
    depth, cells = _cells(df, task, "train_log")
    logs = [c for _, runs in cells for c in runs["train_log"]]
    quantities = [(col, name) for col, name in QUANTITIES if any(col in c for c in logs)]
    if not quantities:
        return None
    cells = cells[:MAX_STABILITY_ROWS]
    n = len(quantities)
    fig, axes = grid(len(cells) * n, ncols=n)
    for i, (label, runs) in enumerate(cells):
        for ax, (col, name) in zip(axes[i * n : (i + 1) * n], quantities, strict=True):
            drawn = []
            for arch, a in runs.groupby("arch"):
                drawn += _band(ax, list(a["train_log"]), col, arch, palette.get(arch), True)
            if drawn and max(drawn) >= LOG_SPAN * min(drawn):
                ax.set_yscale("log")
            ax.set_title(f"{tex_safe(task)}: {label}", fontsize=9)
            ax.set_xlabel("step")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3, which="both")
    shared_legend(fig, axes)
    caption = ("Stability quantities the runs log while training (their CSV log), depth "
               f"{depth:g}: the norm of all parameter gradients, the largest update-to-weight "
               "ratio over layers and the RMS of the residual stream after the last block "
               f"(log scale where a panel spans {LOG_SPAN}x or more); one row per lr / warmup "
               f"cell (at most {MAX_STABILITY_ROWS}); {BAND}. Early instability (Post-LN "
               "without warmup) shows as a grad-norm or update-ratio peak in the first "
               "steps.")  # fmt: skip
    return save(fig, out, f"stability_curves_{task}", "curves",
                f"Stability over training: {task}, depth {depth:g}", caption)  # fmt: skip


def lr_schedule_figure(df: pd.DataFrame, task: str, out: Path) -> Fig | None:
    """The learning rate vs step of each lr / warmup / schedule cell, when the task's runs
    differ in warmup or schedule and log train/lr; None otherwise."""
    g = usable(df)
    g = g[(g["task"] == task) & g["train_log"].notna()] if len(g) else g
    g = g[[c is not None and "lr" in c and c["lr"].notna().any() for c in g["train_log"]]]
    keys = [k for k in ("lr", "warmup_steps", "schedule", "max_steps") if k in g]
    if g.empty or all(g[k].nunique(dropna=False) < 2 for k in ("warmup_steps", "schedule")
                      if k in g):  # fmt: skip
        return None
    fig, axes = grid(1, ncols=1, size=(6.4, 3.6))
    ax = axes[0]
    for k, (cell, runs) in enumerate(g.groupby(keys, dropna=False)):
        values = dict(zip(keys, cell, strict=True))
        c = runs["train_log"].iloc[0][["step", "lr"]].dropna()
        c = c[c["lr"] > 0]
        label = (f"lr {values['lr']:g}, warmup {values['warmup_steps']:g}, "
                 f"{tex_safe(values.get('schedule'))}")  # fmt: skip
        ax.plot(c["step"], c["lr"], lw=1.2, color=f"C{k % 10}", label=label)
    ax.set_yscale("log")
    ax.set_title(tex_safe(task), fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate (train/lr)")
    ax.grid(alpha=0.3, which="both")
    shared_legend(fig, axes)
    caption = ("train/lr as logged at each training step, one line per lr / warmup / schedule "
               "cell (every variant and seed of a cell shares it; drawn from one of its "
               "runs); log scale.")  # fmt: skip
    return save(fig, out, f"lr_schedule_{task}", "curves", f"Learning-rate schedule: {task}",
                caption)  # fmt: skip


def training_figures(df: pd.DataFrame, out: Path, palette: dict[str, tuple]) -> list[Fig]:
    """Per task, in this order: training loss, validation metric, stability quantities, LR
    schedule (each only when the logs have it)."""
    figs: list[Fig | None] = []
    for task in sorted(usable(df)["task"].dropna().unique()) if len(df) else []:
        figs += [
            curve_figure(df, task, out, palette),
            val_curves_figure(df, task, out, palette),
            stability_curves_figure(df, task, out, palette),
            lr_schedule_figure(df, task, out),
        ]
    return [f for f in figs if f is not None]
