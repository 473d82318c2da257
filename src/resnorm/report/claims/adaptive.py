"""Adaptive seeds: a study runs its primary claims' cells in rounds of seeds and stops a cell
once every primary claim that needs it is decided.

Schedule (``study.adaptive`` in a study preset): ``start`` seeds per cell in the first round,
``step`` more per round, at most ``max``; that is K = 1 + (max − start) / step planned looks
at the data. Correction across the looks: Bonferroni over the K looks — each look judges
the primary family (Holm within it) at α / K. A false decision at *some* look then has
probability at most K · α / K = α whatever the looks' dependence (the union bound), so the
verdicts stay valid however the rounds stop. It costs power against a fixed design of the
final size (the price of being allowed to stop early); tests/test_report_calibration.py
measures both the error rate and the saving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from resnorm.outputs import FAILED, FINISHED
from resnorm.report.claims.finding import Finding
from resnorm.report.claims.needs import Cell
from resnorm.report.claims.registry import claim
from resnorm.report.claims.verdicts import ALPHA, INCONCLUSIVE


@dataclass(frozen=True)
class Schedule:
    start: int = 4
    step: int = 4
    max: int = 16

    def __post_init__(self) -> None:
        if not (0 < self.start <= self.max and self.step > 0):
            raise ValueError(f"study.adaptive {self}: needs 0 < start <= max and step > 0")
        if (self.max - self.start) % self.step:
            raise ValueError(f"study.adaptive {self}: max − start must be a multiple of step")

    @property
    def looks(self) -> int:
        return 1 + (self.max - self.start) // self.step

    @property
    def alpha(self) -> float:
        """The level each look judges the primary family at."""
        return ALPHA / self.looks

    def next_seeds(self, done: int) -> range:
        """The seeds of a cell's next round after ``done`` seeds (empty at max)."""
        if done >= self.max:
            return range(0)
        return range(done, self.start if done < self.start else min(done + self.step, self.max))

    @classmethod
    def of(cls, spec: Mapping | None) -> Schedule | None:
        return cls(**{k: int(v) for k, v in spec.items()}) if spec else None


def declared_looks(df: pd.DataFrame) -> int:
    """The planned looks the runs' study presets declare (study.adaptive); 1 for a fixed
    design. Runs of different schedules: the largest K (the stricter level)."""
    if "study_looks" not in df:
        return 1
    looks = pd.to_numeric(df["study_looks"], errors="coerce").dropna()
    return int(looks.max()) if len(looks) else 1


ENDED = (*FINISHED, FAILED)


@dataclass
class CellPlan:
    task: str
    cell: Cell
    done: int  # seeds 0 .. done-1 have ended (completed, diverged or failed)
    seeds: range  # the next round ('' when the cell stops)
    why: str


def seeds_done(runs: pd.DataFrame, task: str, cell: Cell) -> int:
    """How many of seeds 0, 1, 2, … the cell has ended (completed, diverged, pruned or
    failed; a run still running is to come), counted up to the first gap: rounds add seeds
    in order, so a gap is a run still to come."""
    if runs.empty:
        return 0
    ended = runs["status"].isin(ENDED) if "status" in runs else True
    mask = (runs["task"] == task) & (runs["arch"] == cell.arch) & ended
    for col, v in (("depth", cell.depth), ("lr", cell.lr), ("warmup_steps", cell.warmup),
                   ("heads", cell.heads), ("dim", cell.dim)):  # fmt: skip
        if col in runs:
            mask &= np.isclose(pd.to_numeric(runs[col], errors="coerce"), float(v), rtol=1e-9)
    have = {int(s) for s in runs.loc[mask, "seed"].dropna()}
    n = 0
    while n in have:
        n += 1
    return n


def plan(
    findings: Sequence[Finding],
    runs: pd.DataFrame,
    tasks: Sequence[str],
    primary: Sequence[str],
    schedule: Schedule,
) -> list[CellPlan]:
    """Per task, each primary claim's cells with the next round of seeds: a cell continues
    while some primary claim that needs it is inconclusive at this look and it has fewer
    than ``schedule.max`` seeds; a claim with runs missing is undecided."""
    open_claims: dict[tuple[str, Cell], list[str]] = {}
    all_cells: dict[tuple[str, Cell], list[str]] = {}
    by_key = {(f.task, f.id): f for f in findings}
    for task in tasks:
        for key in primary:
            f = by_key.get((task, key))
            undecided = f is None or f.verdict == INCONCLUSIVE
            for cell in claim(key).needs:
                all_cells.setdefault((task, cell), []).append(key)
                if undecided:
                    open_claims.setdefault((task, cell), []).append(key)
    out = []
    for (task, cell), keys in sorted(all_cells.items()):
        done = seeds_done(runs, task, cell)
        waiting = open_claims.get((task, cell), [])
        if done < schedule.start:
            seeds, why = schedule.next_seeds(done), f"first round of ({', '.join(keys)})"
        elif not waiting:
            seeds, why = range(0), f"stops: ({', '.join(keys)}) decided"
        elif done >= schedule.max:
            seeds, why = range(0), f"stops: {schedule.max} seeds run, ({', '.join(waiting)}) open"
        else:
            seeds = schedule.next_seeds(done)
            why = f"({', '.join(waiting)}) inconclusive at α = {schedule.alpha:.4g}"
        out.append(CellPlan(task, cell, done, seeds, why))
    return out


def commands(plans: Sequence[CellPlan], study: str) -> list[str]:
    """One `resnorm train -m` line per task and round of seeds that some cells need."""
    groups: dict[tuple[str, range], list[str]] = {}
    for p in plans:
        if len(p.seeds):
            groups.setdefault((p.task, p.seeds), []).append(p.cell.case)
    return [
        f"resnorm train -m study={study} task={task} +case={','.join(sorted(cases))} "
        f"seed={','.join(map(str, seeds))}"
        for (task, seeds), cases in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1][0]))
    ]
