"""What a finding lacks: the needed cells (claims.needs) that have fewer than MIN_SEEDS usable
seeds in a task, with where the variant does have runs so a reader sees a near miss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pandas as pd

from resnorm.report.claims.needs import MIN_SEEDS, Cell

CellKey = tuple[str, float, float, float, float]  # arch, depth, lr, warmup, heads


class HasIndex(Protocol):
    task: str

    @property
    def index(self) -> tuple[dict, dict]: ...


def by_cell(frame: pd.DataFrame, column: str) -> dict[CellKey, set]:
    keys = ["arch", "depth", "lr", "warmup_steps", "heads"]
    if not len(frame):
        return {}
    return {k: set(v.dropna()) for k, v in frame.groupby(keys, dropna=False)[column]}


def missing_cells(ctx: HasIndex, cells: Sequence[Cell]) -> list[str]:
    """Cells with fewer than MIN_SEEDS usable seeds in this task, with what is there."""
    seeds_at, bad_at = ctx.index
    out = []
    for c in cells:
        key = (c.arch, float(c.depth), float(c.lr), float(c.warmup), float(c.heads))
        seeds = sorted(int(x) for x in seeds_at.get(key, ()))
        if len(seeds) < MIN_SEEDS:
            bad = bad_at.get(key)
            extra = f"; not usable: {', '.join(sorted(bad))}" if bad else ""
            have = f"seeds {seeds}" if seeds else "no runs" + elsewhere(c, seeds_at)
            out.append(f"{ctx.task} {c.label()} ({have}{extra})")
    return out


def elsewhere(c: Cell, seeds_at: dict[CellKey, set]) -> str:
    """Where this variant does have runs, so a reader sees a near miss (e.g. another depth)."""
    sets = [f"depth={d:g} lr={lr:g} warmup={w:g} heads={h:g} (seeds {sorted(int(x) for x in s)})"
            for (arch, d, lr, w, h), s in sorted(seeds_at.items()) if arch == c.arch]  # fmt: skip
    if not sets:
        return ""
    more = f", +{len(sets) - 3} more" if len(sets) > 3 else ""
    return f"; {c.arch} has runs at {', '.join(sets[:3])}{more}"
