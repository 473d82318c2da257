"""Every figure a report shows, in report order; sections without data draw none."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnorm.report.figures.aggregated import depth_figure, heatmap_figure, lr_figure
from resnorm.report.figures.base import Fig, colors
from resnorm.report.figures.frontier import frontier_figures
from resnorm.report.figures.per_run import grad_init_figure, rank_collapse_figure
from resnorm.report.figures.training import training_figures


def build_all(df: pd.DataFrame, out: Path) -> list[Fig]:
    """Every figure the runs allow; sections without data produce no figure."""
    palette = colors(df["arch"].dropna()) if len(df) else {}
    figs = [
        depth_figure(df, out, palette),
        heatmap_figure(df, out, "depth", "stability_depth", "depth"),
        heatmap_figure(df, out, "lr", "stability_lr", "learning rate"),
        grad_init_figure(df, out, palette),
        rank_collapse_figure(df, out, palette),
        *training_figures(df, out, palette),
        lr_figure(df, out, palette),
        *frontier_figures(df, out, palette),
    ]
    return [f for f in figs if f is not None]
