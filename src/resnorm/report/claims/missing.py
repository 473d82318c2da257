"""What a finding lacks: the needed cells (claims.needs) that have fewer than MIN_SEEDS usable
seeds in a task, with where the variant does have runs so a reader sees a near miss; and the
task's base width, the one width every claim but (r) is judged at."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import pandas as pd

from resnorm.report.claims.needs import DIM, MIN_SEEDS, Cell

CellKey = tuple[str, float, float, float, float, float]  # arch, depth, lr, warmup, heads, dim
KEYS = ["arch", "depth", "lr", "warmup_steps", "heads", "dim"]


class HasIndex(Protocol):
    task: str
    base_dim: float

    @property
    def index(self) -> tuple[dict, dict]: ...


def base_width(runs: pd.DataFrame) -> float:
    """The width claims are judged at: the model default (DIM) where the task has runs at it,
    else the narrowest width it has (a study run at another width throughout); NaN when no
    run records a width. Runs of other widths (claim r's wider cells) never enter it."""
    dims = runs["dim"].dropna().astype(float) if "dim" in runs else pd.Series(dtype=float)
    if dims.empty:
        return math.nan
    return float(DIM) if (dims == DIM).any() else float(dims.min())


def at_width(runs: pd.DataFrame, dim: float) -> pd.DataFrame:
    """The runs at width ``dim``; a run that records no width counts as the base width."""
    if "dim" not in runs or not math.isfinite(dim):
        return runs
    width = runs["dim"].astype(float)
    return runs[width.isna() | (width == dim)]


def by_cell(frame: pd.DataFrame, column: str, base_dim: float = float(DIM)) -> dict[CellKey, set]:
    if not len(frame):
        return {}
    width = frame["dim"].astype(float) if "dim" in frame else pd.Series(math.nan, frame.index)
    frame = frame.assign(dim=width.fillna(base_dim if math.isfinite(base_dim) else DIM))
    return {k: set(v.dropna()) for k, v in frame.groupby(KEYS, dropna=False)[column]}


def cell_key(c: Cell, base_dim: float) -> CellKey:
    """The index key of a cell; a cell at the default width is looked up at the base width."""
    dim = base_dim if c.dim == DIM and math.isfinite(base_dim) else float(c.dim)
    return (c.arch, float(c.depth), float(c.lr), float(c.warmup), float(c.heads), dim)


def missing_cells(ctx: HasIndex, cells: Sequence[Cell]) -> list[str]:
    """Cells with fewer than MIN_SEEDS usable seeds in this task, with what is there."""
    seeds_at, bad_at = ctx.index
    out = []
    for c in cells:
        key = cell_key(c, ctx.base_dim)
        seeds = sorted(int(x) for x in seeds_at.get(key, ()))
        if len(seeds) < MIN_SEEDS:
            bad = bad_at.get(key)
            extra = f"; not usable: {', '.join(sorted(bad))}" if bad else ""
            have = f"seeds {seeds}" if seeds else "no runs" + elsewhere(c, seeds_at)
            out.append(f"{ctx.task} {c.label()} ({have}{extra})")
    return out


def elsewhere(c: Cell, seeds_at: dict[CellKey, set]) -> str:
    """Where this variant does have runs, so a reader sees a near miss (e.g. another depth)."""
    sets = [
        f"depth={d:g} lr={lr:g} warmup={w:g} heads={h:g}"
        + (f" dim={m:g}" if m != DIM else "")
        + f" (seeds {sorted(int(x) for x in s)})"
        for (arch, d, lr, w, h, m), s in sorted(seeds_at.items())
        if arch == c.arch
    ]
    if not sets:
        return ""
    more = f", +{len(sets) - 3} more" if len(sets) > 3 else ""
    return f"; {c.arch} has runs at {', '.join(sets[:3])}{more}"
