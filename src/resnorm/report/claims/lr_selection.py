"""Each variant at its own best learning rate (the fair protocol of claims d and g).

For a variant at a setting (the cell key but lr: depth, width, heads, warmup, schedule,
budget, ...; ``analysis.cells``), the chosen learning rate is
the grid value with the best mean *validation* score over seeds (``val_best``: the score at
the run's best validation point), among grid values with MIN_SEEDS usable seeds; the grid
must be complete (every value with MIN_SEEDS seeds), else the claim falls back to the base
learning rate and says so. A diverged run counts as chance for the selection, as its test
score does (sources.rows); any other run without a validation score does not count toward
the grid. Ties go to the smaller lr.
The verdict is then on the *test* score at the chosen rates, paired by seed: seed i of one
variant at its lr against seed i of the other at its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from resnorm.report.analysis.cells import cell_keys
from resnorm.report.claims.needs import BASE_LR, BASE_WARMUP, HEADS, LR_GRID, MIN_SEEDS
from resnorm.report.claims.rules import PAIR_KEYS, Context, shared_depths

# The validation score that selects, per headline metric (summary metrics val_best/*).
VAL_COLUMNS = {"test/acc": "m_val_best/acc", "test/bpc": "m_val_best/bpc"}
SETTING = ("depth", "dim", "heads", "warmup_steps", "max_steps")  # the columns setting_text names
OWN_LR_KEYS = tuple(k for k in PAIR_KEYS if k != "lr")  # pairs across each arm's own lr


def lr_text(lr: float) -> str:
    """A learning rate as 1e-3, 2.5e-4: how the grid is written."""
    mantissa, exp = f"{lr:.6e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp)}"


def grid_text(grid: tuple[float, ...] = LR_GRID) -> str:
    return ", ".join(lr_text(lr) for lr in grid)


def protocol_text(grid: tuple[float, ...] = LR_GRID) -> str:
    """What the claims' test says about the protocol."""
    return (
        f"at each variant's own best learning rate from {grid_text(grid)}, chosen on "
        "validation (mean val_best over seeds; a diverged run scores chance); verdict on test"
    )


def val_scores(ctx: Context, runs: pd.DataFrame) -> pd.Series:
    """Each run's validation score for selection; diverged or missing: chance (the worst)."""
    col = VAL_COLUMNS.get(ctx.metric, "")
    val = runs[col].astype(float) if col in runs else pd.Series(math.nan, index=runs.index)
    worst = -math.inf if ctx.sign > 0 else math.inf
    chance = runs["chance"].astype(float) if "chance" in runs else pd.Series(worst, runs.index)
    chance = chance.where(np.isfinite(chance), worst)
    bad = runs["diverged"].astype(bool) | ~np.isfinite(val)
    return val.where(~bad, chance)


def _on_grid(runs: pd.DataFrame, grid: tuple[float, ...]) -> pd.Series:
    """Each run's lr snapped to the grid value it equals (NaN when off the grid)."""
    lr = runs["lr"].astype(float).to_numpy()
    out = np.full(len(lr), math.nan)
    for g in grid:
        out[np.isclose(lr, g, rtol=1e-6, atol=0.0)] = g
    return pd.Series(out, index=runs.index)


def _counted(ctx: Context, runs: pd.DataFrame, grid: tuple[float, ...]) -> pd.DataFrame:
    """The runs on the grid that can take part in a selection, with their snapped lr (_lr)
    and selection score (_val): a run that did not diverge needs a validation score."""
    if runs.empty:
        return runs.assign(_lr=pd.Series(dtype=float), _val=pd.Series(dtype=float))
    col = VAL_COLUMNS.get(ctx.metric, "")
    scored = runs[col].notna() if col in runs else pd.Series(False, index=runs.index)
    runs = runs.assign(_lr=_on_grid(runs, grid), _val=val_scores(ctx, runs))
    return runs[runs["_lr"].notna() & (scored | runs["diverged"].astype(bool))]


@dataclass
class Choice:
    """One variant's chosen learning rate at one setting."""

    arch: str
    setting: tuple
    lr: float
    val: dict[float, float]  # mean validation score per complete grid lr
    runs: pd.DataFrame  # the variant's runs at the setting and the chosen lr
    keys: tuple[str, ...] = SETTING  # the columns of ``setting``

    def text(self, ctx: Context) -> str:
        scores = ", ".join(
            f"{lr_text(lr)}: {v:.4g}{'*' if lr == self.lr else ''}" for lr, v in self.val.items()
        )
        div = int(self.runs["diverged"].sum())
        where = setting_text(self.setting, self.keys)
        return (
            f"{self.arch} at {where}: lr {lr_text(self.lr)} chosen on "
            f"validation, mean val {ctx.metric.split('/')[-1]} {self.val[self.lr]:.4g} "
            f"(grid: {scores}); {self.runs['seed'].nunique()} seeds, {div} diverged at that lr"
        )


def setting_keys(runs: pd.DataFrame) -> list[str]:
    """A setting: the cell key but task, arch and lr (depth first), as ``runs`` carries it."""
    return cell_keys(runs, without=("task", "arch", "lr"))


def _plain(value: object) -> object:
    """NaN -> None, so that two settings missing one field compare equal."""
    return None if pd.isna(value) else value


def setting_text(setting: tuple, keys: tuple[str, ...] = SETTING) -> str:
    s = dict(zip(keys, setting, strict=True))
    out = f"depth {s['depth']:g}"
    if s.get("warmup_steps") not in (None, BASE_WARMUP):
        out += f" warmup {s['warmup_steps']:g}"
    if s.get("heads") not in (None, HEADS):
        out += f" heads {s['heads']:g}"
    return out


def choose(ctx: Context, runs: pd.DataFrame, grid: tuple[float, ...] = LR_GRID) -> Choice | None:
    """The val-best grid lr of one variant at one setting; None unless the grid is complete."""
    runs = _counted(ctx, runs, grid)
    if runs.empty:
        return None
    seeds = runs.groupby("_lr")["seed"].nunique()
    if len(seeds) < len(grid) or int(seeds.min()) < MIN_SEEDS:
        return None
    means = runs.groupby("_lr")["_val"].mean()
    val = {float(lr): float(means[lr]) for lr in sorted(means.index)}
    best = max(val, key=lambda lr: (ctx.sign * val[lr], -lr))  # ties: the smaller lr
    chosen = runs[runs["_lr"] == best].drop(columns=["_lr", "_val"])
    first, keys = runs.iloc[0], tuple(setting_keys(runs))
    setting = tuple(_plain(first[k]) for k in keys)
    return Choice(str(first["arch"]), setting, best, val, chosen, keys)


def complete_grids(ctx: Context, arch: str, grid: tuple[float, ...] = LR_GRID) -> dict:
    """Setting -> Choice for every setting at which ``arch`` has a complete grid."""
    out = {}
    g = ctx.arm(arch)
    for _, runs in g.groupby(setting_keys(g), dropna=False) if len(g) else ():
        c = choose(ctx, runs, grid)
        if c is not None:
            out[c.setting] = c
    return out


def grid_gaps(ctx: Context, arch: str, grid: tuple[float, ...], min_depth: float) -> str:
    """Which grid lrs lack MIN_SEEDS seeds for ``arch`` at its deepest depth >= min_depth."""
    g = ctx.arm(arch)
    g = g[g["depth"] >= min_depth]
    g = _counted(ctx, g[g["depth"] == g["depth"].max()] if len(g) else g, grid)
    seeds = g.groupby("_lr")["seed"].nunique() if len(g) else pd.Series()
    lack = [lr_text(x) for x in grid if int(seeds.get(x, 0)) < MIN_SEEDS]
    return f"{arch} lacks lr {', '.join(lack)}" if lack else f"{arch} complete"


@dataclass
class Arms:
    """Two variants' runs as a claim compares them, and how they were chosen."""

    a: pd.DataFrame
    b: pd.DataFrame
    keys: tuple[str, ...]  # pairing keys for rules.compare
    where: str  # e.g. "depth 8, own best lr (rezero 0.01, pre_ln 0.01)"
    own_lr: bool
    details: list[str] = field(default_factory=list)
    depth: float = math.nan  # the depth judged (NaN: none)


def at_base_lr(ctx: Context) -> Context:
    """The same task with only the base-lr runs: the comparison before the fair protocol."""
    on = np.isclose(ctx.runs["lr"].astype(float), BASE_LR, rtol=1e-6, atol=0.0)
    return Context(ctx.task, ctx.runs[on], ctx.all_runs)


def own_best_arms(
    ctx: Context,
    arch: str,
    ref: str,
    grid: tuple[float, ...] = LR_GRID,
    min_depth: float = 0.0,
    deepest: bool = False,
) -> Arms:
    """``arch`` and ``ref`` each at its own val-best lr at the settings where both have a
    complete grid (depth >= min_depth; only the deepest if ``deepest``). Without such a
    setting: both at the base lr (as before the protocol), and the details say why."""
    mine, theirs = complete_grids(ctx, arch, grid), complete_grids(ctx, ref, grid)
    shared = sorted(s for s in set(mine) & set(theirs) if s[0] >= min_depth)
    if deepest and shared:
        shared = [s for s in shared if s[0] == shared[-1][0]]
    if shared:
        picks = [(mine[s], theirs[s]) for s in shared]
        lrs = "; ".join(f"{a.arch} {lr_text(a.lr)}, {b.arch} {lr_text(b.lr)}" for a, b in picks)
        depths = ", ".join(f"{d:g}" for d in sorted({s[0] for s in shared}))
        return Arms(
            pd.concat([a.runs for a, _ in picks]),
            pd.concat([b.runs for _, b in picks]),
            OWN_LR_KEYS,
            f"depth {depths}, own best lr ({lrs})",
            True,
            [c.text(ctx) for pair in picks for c in pair],
            float(shared[-1][0]),
        )
    return _fallback(ctx, arch, ref, grid, min_depth, deepest)


def _fallback(
    ctx: Context, arch: str, ref: str, grid: tuple[float, ...], min_depth: float, deepest: bool
) -> Arms:
    base = at_base_lr(ctx)
    why = "; ".join(grid_gaps(ctx, x, grid, min_depth) for x in (arch, ref))
    where = f"depth ≥ {min_depth:g}" if min_depth > 0 else "one shared setting"
    note = (
        f"own-best-LR protocol needs {MIN_SEEDS} seeds at every lr of {grid_text(grid)} for "
        f"{arch} and {ref} at {where} ({why}): judged at lr {lr_text(BASE_LR)}"
    )
    a, b = base.arm(arch), base.arm(ref)
    depth = math.nan
    if deepest:
        depths = [d for d in shared_depths(base, arch, ref) if d >= min_depth]
        depth = depths[-1] if depths else math.nan
        a, b = a[a["depth"] == depth], b[b["depth"] == depth]
    label = (f"depth {depth:g}, " if deepest else "") + f"lr {lr_text(BASE_LR)}"
    return Arms(a, b, PAIR_KEYS, label, False, [note], depth)


# shown with a verdict reached without the own-best-lr protocol (its grid incomplete)
BASE_LR_ONLY = f"both at lr {lr_text(BASE_LR)} only: LR grid incomplete"
