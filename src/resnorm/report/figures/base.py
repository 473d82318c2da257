"""What every figure shares: matplotlib's Agg backend through ``Figure`` objects (no
pyplot global state), one style, panel grids, a shared legend, and saving each figure as
PNG (embedded in index.html) and SVG (next to it).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",
        "font.size": 9,
        "axes.titlesize": 10,
        "figure.dpi": 100,
        "savefig.dpi": 100,
    }
)  # math stays on (log-axis ticks are mathtext); names go through tex_safe
PAD = 0.06  # inches of margin around everything drawn
LEGEND_FONT = 8
MAX_STEM = 100  # characters kept of a long name; the hash tells long names apart


@dataclass
class Fig:
    name: str  # file stem in the report folder
    section: str  # which report section shows it
    title: str
    caption: str
    png: Path
    svg: Path


def tex_safe(name: object) -> str:
    """``name`` (a task, variant, parameter or study name from anyone's runs) as matplotlib
    text: each "$" is a dollar sign, never the start of TeX."""
    return str(name).replace("$", r"\$")


def safe_filename(text: str) -> str:
    """A readable file stem for any string (task, variant, study names from other people's
    runs): characters outside [A-Za-z0-9._-] become "_", and when anything had to change,
    8 hex digits of the original's hash follow, so "a/b" and "a_b" stay two files."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".")[:MAX_STEM]  # no hidden files
    if stem == text and stem:
        return stem
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem}_{digest}" if stem else digest


def _renderer(fig: Figure):
    """The Agg renderer that measures text (a bare ``Figure`` has no canvas of its own)."""
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    return canvas.get_renderer()


def save(fig: Figure, out: Path, name: str, section: str, title: str, caption: str) -> Fig:
    """Write ``fig`` as PNG and SVG, named after ``name`` made safe (``safe_filename``)."""
    name = safe_filename(name)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.draw_without_rendering()  # runs the layout engine, if any, once
    # the canvas is whatever was drawn (crop or grow): no text outside it, however long
    box = fig.get_tightbbox(_renderer(fig)).padded(PAD)
    if fig.get_layout_engine() is not None:
        fig.set_layout_engine("none")  # keep the positions that draw computed
    fig.savefig(png, bbox_inches=box)
    fig.savefig(svg, bbox_inches=box)
    return Fig(name, section, title, caption, png, svg)


def colors(archs: Iterable[str]) -> dict[str, tuple]:
    """A stable colour per variant across every figure of a report."""
    names = sorted(set(archs))
    tab20 = matplotlib.colormaps["tab20"]
    # the 10 strong tab20 colours first, then their light partners: neighbours stay distinct
    order = [tab20(2 * k) for k in range(10)] + [tab20(2 * k + 1) for k in range(10)]
    return {a: order[i % 20] for i, a in enumerate(names)}


def grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.2)) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    width, height = size[0] * ncols, size[1] * nrows
    fig = Figure(figsize=(width, height))
    # Fixed margins in inches: a constrained layout would cost a third of the drawing time.
    gap = 0.9 / (size[1] - 0.9)  # room for a title, tick labels and an x label between rows
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.15 / width, bottom=0.55 / height,
                        top=1 - 0.35 / height, wspace=0.3, hspace=gap)  # fmt: skip
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def shared_legend(fig: Figure, axes: list) -> None:
    """One legend under all panels (not on top of any data), as many columns as fit the
    figure's width, with room made for its rows."""
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if not seen:
        return
    width, height = fig.get_size_inches()
    renderer = _renderer(fig)
    ncols = min(8, len(seen))
    while True:  # measured, not guessed: the widest names decide how many columns fit
        legend = fig.legend(list(seen.values()), list(seen), loc="lower center",
                            ncols=ncols, fontsize=LEGEND_FONT, frameon=False,
                            bbox_to_anchor=(0.5, 0.0))  # fmt: skip
        box = legend.get_window_extent(renderer)
        if box.width <= (width - 2 * PAD) * fig.dpi or ncols == 1:
            break
        legend.remove()
        ncols -= 1
    extra = box.height / fig.dpi + 0.1
    fig.set_size_inches(width, height + extra)
    params = fig.subplotpars
    scale = height / (height + extra)
    fig.subplots_adjust(bottom=(params.bottom * height + extra) / (height + extra),
                        top=1 - (1 - params.top) * scale)  # fmt: skip


def metric_label(metric: str) -> str:
    return "test bits per char (lower is better)" if metric.endswith("bpc") else "test accuracy"
