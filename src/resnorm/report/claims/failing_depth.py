"""Claims judged where a baseline fails ((d) ReZero vs no norm, (e) DeepNorm vs Post-LN).

At each depth the baseline has runs, it is taken at its own best (lr, warmup) of the
claim's grid, chosen on validation (a diverged run scores chance, as in claims.lr_selection);
where that grid is incomplete, at the base lr and warmup, and the text says so. The depth to
judge is where the baseline fails most often (analysis.failures) on the SELECT_SEEDS, among
the depths where it fails on at least FAILS of them; the verdict uses the other seeds only,
so the seeds that picked the depth never test it. When the baseline fails at no depth run,
the claim is not testable there (inconclusive while its own cells are still missing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from resnorm.report.analysis import failures
from resnorm.report.analysis.stats import NONE
from resnorm.report.claims.finding import Finding
from resnorm.report.claims.lr_selection import VAL_COLUMNS, lr_text, val_scores
from resnorm.report.claims.missing import missing_cells
from resnorm.report.claims.needs import BASE_LR, BASE_WARMUP, HEADS, MIN_SEEDS, SEEDS
from resnorm.report.claims.rules import Context
from resnorm.report.claims.verdicts import BETTER, NOT_TESTABLE, FailurePart

# Seeds 0–1 choose the depth to judge, seeds 2–7 judge it. A depth picked because the
# baseline failed on the very seeds then tested would make "it fails more often" likely by
# construction; two seeds are the fewest that can show a failure share, six still test.
SELECT_SEEDS = (0, 1)
JUDGE_SEEDS = tuple(s for s in SEEDS if s not in SELECT_SEEDS)
FAILS = 0.5  # the baseline fails at a depth where at least half its selection seeds fail
# Pairing at one depth: seed i of one arm at its own lr/warmup against seed i of the other.
JUDGE_KEYS = ("depth", "dim", "heads", "max_steps", "seed")

Combo = tuple[float, float]  # (lr, warmup steps)


def combos(lrs: Sequence[float], warmups: Sequence[float] = (BASE_WARMUP,)) -> tuple[Combo, ...]:
    """Every (lr, warmup) pair of two grids."""
    return tuple((float(lr), float(w)) for lr in lrs for w in warmups)


def combo_text(c: Combo) -> str:
    """'lr 1e-3', with the warmup only where it is not the base one."""
    warmup = f", warmup {c[1]:g}" if c[1] != BASE_WARMUP else ""
    return f"lr {lr_text(c[0])}{warmup}"


def seeds_text(seeds: Sequence[int]) -> str:
    return f"seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"


@dataclass
class Pick:
    """One arm at one depth, at the (lr, warmup) it is judged at, every seed."""

    arch: str
    depth: float
    combo: Combo
    runs: pd.DataFrame
    own: bool  # chosen on validation from a complete grid (else: base lr and warmup)
    text: str

    @property
    def selection(self) -> pd.DataFrame:
        return self.runs[self.runs["seed"].isin(SELECT_SEEDS)]

    @property
    def judged(self) -> pd.DataFrame:
        return self.runs[~self.runs["seed"].isin(SELECT_SEEDS)]

    def fail_share(self) -> float:
        """Share of the selection seeds' runs that failed (NaN without such runs)."""
        sel = self.selection
        return float(failures.failed(sel).mean()) if len(sel) else math.nan


def _at(runs: pd.DataFrame, c: Combo) -> pd.DataFrame:
    lr = runs["lr"].astype(float).to_numpy()
    on = np.isclose(lr, c[0], rtol=1e-6, atol=0.0) & (runs["warmup_steps"] == c[1]).to_numpy()
    return runs[on]


def arm_at(ctx: Context, arch: str, depth: float) -> pd.DataFrame:
    """``arch``'s runs at ``depth``, at the base head count (other cells vary the heads)."""
    g = ctx.arm(arch, depth=depth)
    return g[g["heads"].isna() | (g["heads"] == HEADS)] if "heads" in g else g


def pick(ctx: Context, arch: str, depth: float, grid: Sequence[Combo]) -> Pick:
    """``arch`` at ``depth`` at its val-best (lr, warmup) of ``grid`` (ties: the smaller lr,
    then the shorter warmup), each grid point needing MIN_SEEDS seeds with a validation score
    or a divergence; else at the base lr and warmup."""
    g, col = arm_at(ctx, arch, depth), VAL_COLUMNS.get(ctx.metric, "")
    means, lack = {}, []
    for c in grid:
        runs = _at(g, c)
        scored = runs[col].notna() if col in runs else pd.Series(False, index=runs.index)
        runs = runs[scored | runs["diverged"].astype(bool)]
        if runs["seed"].nunique() < MIN_SEEDS:
            lack.append(combo_text(c))
        else:
            means[c] = float(val_scores(ctx, runs).mean())
    where = f"{arch} at depth {depth:g}"
    if not lack and means:
        best = max(means, key=lambda c: (ctx.sign * means[c], -c[0], -c[1]))
        grid_scores = "; ".join(
            f"{combo_text(c)}: {v:.4g}{'*' if c == best else ''}" for c, v in means.items()
        )
        text = f"{where}: {combo_text(best)} chosen on validation (mean val: {grid_scores})"
        return Pick(arch, depth, best, _at(g, best), True, text)
    why = f"own-best protocol needs {MIN_SEEDS} seeds at each of " + "; ".join(
        combo_text(c) for c in grid
    )
    return at_base(ctx, arch, depth, f"{why}; lacks {'; '.join(lack)}")


BASE: Combo = (BASE_LR, float(BASE_WARMUP))


def at_base(ctx: Context, arch: str, depth: float, why: str) -> Pick:
    """``arch`` at ``depth`` at the base lr and warmup, saying why."""
    text = f"{arch} at depth {depth:g}: {combo_text(BASE)} ({why})"
    return Pick(arch, depth, BASE, _at(arm_at(ctx, arch, depth), BASE), False, text)


def pick_pair(
    ctx: Context, arch: str, ref: str, depth: float, grid: Sequence[Combo]
) -> tuple[Pick, Pick]:
    """Two arms compared at ``depth``: each at its own best where both grids are complete,
    else both at the base lr and warmup (one tuned arm against one untuned is no test of
    either)."""
    a, b = pick(ctx, arch, depth, grid), pick(ctx, ref, depth, grid)
    if a.own and b.own:
        return a, b
    why = f"{(b if a.own else a).arch}'s grid is incomplete: both at the base lr"
    return (a if not a.own else at_base(ctx, arch, depth, why)), (
        b if not b.own else at_base(ctx, ref, depth, why)
    )


def depths_of(ctx: Context, arch: str, min_depth: float = 0.0) -> list[float]:
    """The depths (>= min_depth) at which ``arch`` has usable runs at the base width."""
    g = ctx.arm(arch)
    return sorted(float(d) for d in g["depth"].dropna().unique() if d >= min_depth)


def failing_depth(
    ctx: Context, arch: str, grid: Sequence[Combo], min_depth: float = 0.0
) -> tuple[float, list[Pick], list[str]]:
    """The depth where ``arch`` fails most on SELECT_SEEDS (at least FAILS of them; ties: the
    deeper), NaN when none; the baseline's pick at each depth, and one line per depth."""
    picks = [pick(ctx, arch, d, grid) for d in depths_of(ctx, arch, min_depth)]
    shares = {p.depth: p.fail_share() for p in picks}
    failing = [d for d, s in shares.items() if math.isfinite(s) and s >= FAILS]
    chosen = max(failing, key=lambda d: (shares[d], d)) if failing else math.nan
    lines = [_depth_line(ctx, p) for p in picks]
    return chosen, picks, lines


def _depth_line(ctx: Context, p: Pick) -> str:
    sel = p.selection
    count = failures.count(sel)
    mean = f", mean {ctx.metric} {sel['value'].mean():.4g}" if len(sel) else ""
    how = "its own best" if p.own else "the base lr and warmup only"
    return (
        f"{p.text}; on {seeds_text(SELECT_SEEDS)} (which choose the depth, at {how}): "
        f"{count.k}/{count.n} failed{mean}"
    )


def untested(f: Finding, ctx: Context, arch: str, picks: Sequence[Pick]) -> Finding:
    """No depth where ``arch`` fails: not testable at the depths run, or inconclusive while
    ``arch``'s own needed cells are missing (a missing depth may be one where it fails)."""
    own_missing = missing_cells(ctx, [c for c in f.cells if c.arch == arch])
    run = ", ".join(f"{p.depth:g}" for p in picks) or "none"
    scores = "; ".join(
        f"depth {p.depth:g}: mean {p.runs['value'].mean():.4g} at {combo_text(p.combo)}, "
        f"{failures.count(p.runs).text()}"
        for p in picks
        if len(p.runs)
    )
    why = (
        f"{arch} fails at none of the depths run ({run}; {scores or 'no runs'}): the claim "
        f"is about depths where it fails"
    )
    if own_missing:
        f.details.insert(0, why + "; its cells below are still missing")
    else:
        f.fixed = NOT_TESTABLE
        f.details.insert(0, "not testable at the depths run: " + why)
    return f


@dataclass
class MustFailLess(FailurePart):
    """A failure-count part the claim rests on: it supports only when the exact test shows
    ``fewer`` failing less often (outcome better), not merely when it does not contradict."""

    def supports(self) -> bool:
        return self.outcome == BETTER


def must_fail_less(
    name: str, fewer: pd.DataFrame, more: pd.DataFrame, arms: tuple[str, str]
) -> MustFailLess:
    """The part "``fewer`` fails less often than ``more``", named ``arms``."""
    a, b = failures.count(fewer), failures.count(more)
    n = min(a.n, b.n)
    return MustFailLess(name, NONE, n, BETTER, 0.0, MIN_SEEDS, fewer=a, more=b, arms=arms)
