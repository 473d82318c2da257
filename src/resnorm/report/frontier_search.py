"""The frontier found by search instead of the whole grid: per seed, the next learning rate
that narrows its max stable LR down to one step of the study's grid.

The report's rule (``analysis.frontier``) is the largest grid LR ``L`` such that every LR
from the first success up to ``L`` succeeded. A seed's frontier is known once ``L`` is
*bracketed*: ``L`` succeeded and the next grid LR above it failed (or ``L`` is the top of
the grid), or every grid LR failed ("none"). The search gets there in two phases:

* **Up, by bisection**, once some LR succeeded: between the frontier of the runs so far and
  the first failure above it (or past the top of the grid), run the middle grid LR.
* **Down, one step at a time**, while nothing has succeeded yet: from the start LR (the
  reference's best LR in its pilot, or the grid's middle), the next grid LR below the
  lowest failure. Not by bisection: an LR too small for the step budget also fails, so a
  failure far below says nothing about the LRs between it and the failures above. When
  even the smallest LR failed, the LRs above the start are tried, one at a time (the start
  may itself have been too small); a seed is "none" only when every grid LR failed.

On the study's 7-point half-decade grid from 1e-2 this is 1-3 runs per seed above the
start and one per step below it, against 7 for the grid (``docs/frontier.md`` "Search").
The search assumes what the rule assumes: successes form one run of the grid up to the
frontier. A failure skipped by the bisection between two successes would be a failure the
rule counts, so the search reports a frontier at or above the grid's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from resnorm.report.analysis.frontier import MIN_GRID, successes
from resnorm.report.analysis.frontier_bar import Bar


def next_index(tested: Mapping[int, bool], n: int, start: int) -> int | None:
    """The grid index to run next for one seed (``tested``: index -> succeeded, over a grid
    of ``n`` LRs), or None when its max stable LR is bracketed."""
    if not tested:
        # never above the third LR from the top: a seed that trains up to the top of the grid
        # then has MIN_GRID LRs, which the report needs for a '≥ top' frontier
        return min(start, max(n - MIN_GRID, 0))
    ok = sorted(i for i, good in tested.items() if good)
    if not ok:
        low = min(tested)
        if low > 0:
            return low - 1
        # down to the bottom, nothing trained: the start may have been too small for the
        # budget, so the LRs above it are tried too, one at a time, before calling it none
        untried = [i for i in range(n) if i not in tested]
        return untried[0] if untried else None
    frontier = ok[0]
    for i in sorted(tested):
        if i <= ok[0]:
            continue
        if not tested[i]:
            break
        frontier = i
    above = [i for i in tested if i > frontier and not tested[i]]
    ceiling = min(above) if above else n
    return None if ceiling == frontier + 1 else (frontier + ceiling) // 2


@dataclass(frozen=True)
class SeedPlan:
    """One (task, variant, depth, seed) of the study: the LRs run so far and the next."""

    task: str
    variant: str
    depth: int
    seed: int
    tested: dict[float, bool]
    next_lr: str | None  # as the grid writes it (so the run directory names match)


def _grid_strings(values: object) -> list[str]:
    return [s.strip() for s in str(values).split(",") if s.strip()]


def start_index(grid: Sequence[float], bar: Bar | None) -> int:
    """Where a seed's search starts: the grid LR nearest the pilot's best LR, else the
    middle of the grid."""
    best = bar.reference_lr if bar is not None else math.nan
    if not math.isfinite(best):
        return len(grid) // 2
    return min(range(len(grid)), key=lambda i: abs(math.log(grid[i]) - math.log(best)))


def plan(
    runs: pd.DataFrame, params: Mapping[str, object], bars: Mapping[str, Bar]
) -> list[SeedPlan]:
    """The next run of every (task, variant, depth, seed) of the study's sweep ``params``
    (its ``hydra.sweeper.params``), from the usable runs so far. Runs that did not finish
    (failed, running) count as not run: the plan names their LR again."""
    grid_text = _grid_strings(params["optim.lr"])
    grid = [float(s) for s in grid_text]
    order = sorted(range(len(grid)), key=lambda i: grid[i])
    grid_text, grid = [grid_text[i] for i in order], [grid[i] for i in order]
    done = runs[runs["usable"].astype(bool)] if len(runs) else runs
    if len(done):
        done = done.assign(success=successes(done, bars))
    out = []
    for task in _grid_strings(params["task"]):
        start = start_index(grid, bars.get(task))
        for variant in _grid_strings(params["variant"]):
            for depth in (int(d) for d in _grid_strings(params["model.depth"])):
                for seed in (int(s) for s in _grid_strings(params["seed"])):
                    tested = _tested(done, task, variant, depth, seed, grid)
                    nxt = next_index({grid.index(lr): ok for lr, ok in tested.items()},
                                     len(grid), start)  # fmt: skip
                    lr = None if nxt is None else grid_text[nxt]
                    out.append(SeedPlan(task, variant, depth, seed, tested, lr))
    return out


def _tested(
    done: pd.DataFrame, task: str, variant: str, depth: int, seed: int, grid: list[float]
) -> dict[float, bool]:
    """LR -> succeeded for one seed's runs on the grid (two runs at one LR: either)."""
    if not len(done):
        return {}
    same = (done["task"] == task) & (done["arch"] == variant)
    same &= (done["depth"].astype(float) == depth) & (done["seed"].astype(float) == seed)
    mine = done[same]
    tested: dict[float, bool] = {}
    for lr, ok in zip(mine["lr"].astype(float), mine["success"], strict=True):
        match = [g for g in grid if math.isclose(g, lr, rel_tol=1e-9)]
        if match:
            tested[match[0]] = tested.get(match[0], False) or bool(ok)
    return tested


def commands(plans: Sequence[SeedPlan], study: str) -> list[str]:
    """One `resnorm train -m` line per task, depth, LR and set of seeds, listing every
    variant that needs exactly that."""
    by_run: dict[tuple[str, int, str, str], set[int]] = {}
    for p in plans:
        if p.next_lr is not None:
            by_run.setdefault((p.task, p.depth, p.next_lr, p.variant), set()).add(p.seed)
    lines: dict[tuple[str, int, str, tuple[int, ...]], list[str]] = {}
    for (task, depth, lr, variant), seeds in by_run.items():
        lines.setdefault((task, depth, lr, tuple(sorted(seeds))), []).append(variant)
    return [
        f"resnorm train -m study={study} task={task} variant={','.join(sorted(variants))} "
        f"model.depth={depth} optim.lr={lr} seed={','.join(map(str, seeds))}"
        for (task, depth, lr, seeds), variants in sorted(
            lines.items(), key=lambda kv: (kv[0][0], kv[0][1], float(kv[0][2]), kv[0][3])
        )
    ]
