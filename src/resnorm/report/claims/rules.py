"""What every claim shares: a Finding (stated test, effect with a 95% CI over seeds,
verdict), the runs of one task (Context), paired comparisons and the verdict rules.

Verdict rules (docs/findings.md):
- inconclusive: a compared group has fewer than MIN_SEEDS seeds with usable runs (or none);
  ``missing`` then names the findings-study cells this task lacks.
- directional claims: supported when the CI of the (paired) difference excludes 0 in the
  claimed direction; otherwise not supported (CI includes 0, or points the other way).
- equivalence claims: supported when the CI lies inside (-margin, +margin); otherwise not
  supported (equivalence could not be shown at this margin).
One Finding per claim and task: a claim can hold on one modality and fail on another.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from resnorm.report.analysis.stats import Estimate, difference
from resnorm.report.claims.needs import MIN_SEEDS, NEEDS, Cell

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
# Equivalence margins (absolute, in the headline metric's units).
MARGINS = {"test/acc": 0.02, "test/bpc": 0.05}
# Keys on which two runs of different variants are paired: same task, setting and seed.
PAIR_KEYS = ("depth", "dim", "lr", "warmup_steps", "max_steps", "seed")
# Init-time probes do not depend on lr / warmup / budget: pair on architecture and seed only,
# so runs of an LR grid are not counted as extra (identical) replicates.
INIT_KEYS = ("depth", "dim", "seed")
DEEP_MIN = 6  # "deep" claims are judged at the deepest depth both arms share, if >= this


@dataclass
class Finding:
    id: str
    claim: str
    source: str
    task: str
    test: str
    effect: float = math.nan
    ci: tuple[float, float] | None = None
    unit: str = ""
    n: int = 0
    verdict: str = INCONCLUSIVE
    missing: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    needs: str = ""

    def effect_text(self) -> str:
        if not math.isfinite(self.effect):
            return "n/a"
        if self.ci is None:
            return f"{self.effect:.4g} (no CI)"
        return f"{self.effect:.4g} [{self.ci[0]:.4g}, {self.ci[1]:.4g}]"


@dataclass
class Context:
    """The runs of one task, ready for the claim functions."""

    task: str
    runs: pd.DataFrame  # usable runs of this task, with probe columns
    all_runs: pd.DataFrame  # every run of this task, whatever its status

    @property
    def metric(self) -> str:
        return str(self.runs["metric"].iloc[0]) if len(self.runs) else "test/acc"

    @property
    def sign(self) -> int:
        """+1 when higher is better (accuracy), -1 for bits per char."""
        return -1 if self.metric.endswith("bpc") else 1

    @property
    def margin(self) -> float:
        return MARGINS.get(self.metric, 0.02)

    @cached_property
    def index(self) -> tuple[dict, dict]:
        """Usable seeds, and statuses of unusable runs, per (arch, depth, lr, warmup)."""
        bad = self.all_runs[~self.all_runs["usable"]]
        return _by_cell(self.runs, "seed"), _by_cell(bad, "status")

    @property
    def delta(self) -> str:
        """Unit of a score difference, e.g. 'Δacc' or 'Δbpc (lower is better)'."""
        return f"Δ{self.metric.split('/')[-1]}" + (" (lower is better)" if self.sign < 0 else "")

    def arm(self, arch: str, **where: object) -> pd.DataFrame:
        g = self.runs[self.runs["arch"] == arch]
        for k, v in where.items():
            g = g[g[k] == v]
        return g


CellKey = tuple[str, float, float, float]  # arch, depth, lr, warmup


def _by_cell(frame: pd.DataFrame, column: str) -> dict[CellKey, set]:
    keys = ["arch", "depth", "lr", "warmup_steps"]
    return {k: set(v.dropna()) for k, v in frame.groupby(keys)[column]} if len(frame) else {}


def missing_cells(ctx: Context, cells: Sequence[Cell]) -> list[str]:
    """Cells with fewer than MIN_SEEDS usable seeds in this task, with what is there."""
    seeds_at, bad_at = ctx.index
    out = []
    for c in cells:
        key = (c.arch, float(c.depth), float(c.lr), float(c.warmup))
        seeds = sorted(int(x) for x in seeds_at.get(key, ()))
        if len(seeds) < MIN_SEEDS:
            bad = bad_at.get(key)
            extra = f"; not usable: {', '.join(sorted(bad))}" if bad else ""
            have = f"seeds {seeds}" if seeds else "no runs" + elsewhere(c, seeds_at)
            out.append(f"{ctx.task} {c.label()} ({have}{extra})")
    return out


def elsewhere(c: Cell, seeds_at: dict[CellKey, set]) -> str:
    """Where this variant does have runs, so a reader sees a near miss (e.g. another depth)."""
    sets = [f"depth={d:g} lr={lr:g} warmup={w:g} (seeds {sorted(int(x) for x in s)})"
            for (arch, d, lr, w), s in sorted(seeds_at.items()) if arch == c.arch]  # fmt: skip
    if not sets:
        return ""
    more = f", +{len(sets) - 3} more" if len(sets) > 3 else ""
    return f"; {c.arch} has runs at {', '.join(sets[:3])}{more}"


def shared_deepest(ctx: Context, *archs: str) -> float:
    """Deepest depth every arch has usable runs at (NaN when there is none)."""
    depths = [set(ctx.arm(a)["depth"].dropna()) for a in archs]
    common = set.intersection(*depths) if depths else set()
    return max(common) if common else math.nan


def no_deep(*archs: str) -> str:
    return f"no depth ≥ {DEEP_MIN} at which {' and '.join(archs)} both have usable runs"


def n_seeds(pairs: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> int:
    """Distinct seeds behind a comparison: of the pairs, or of the smaller unpaired group."""
    if len(pairs):
        return int(pairs["seed"].nunique())
    return int(min(a["seed"].nunique(), b["seed"].nunique()))


def compare(
    a: pd.DataFrame, b: pd.DataFrame, value: str, keys: Sequence[str] = PAIR_KEYS
) -> tuple[Estimate, int]:
    """a - b on a column, paired by setting and seed when possible; returns (estimate, seeds).

    Only runs of settings (keys other than the seed) that both groups have are compared:
    without shared seeds the groups are compared unpaired, never across different settings.
    """
    a = a[a[value].notna()]
    b = b[b[value].notna()]
    setting = [k for k in keys if k != "seed"]
    if setting and not a.empty and not b.empty:
        common = a[setting].drop_duplicates().merge(b[setting].drop_duplicates(), on=setting)
        a, b = a.merge(common, on=setting), b.merge(common, on=setting)
    if a.empty or b.empty:
        return Estimate(math.nan, None, None, 0), 0
    est, pairs = difference(a, b, list(keys), value)
    return est, n_seeds(pairs, a, b)


def oriented(est: Estimate, sign: int) -> Estimate:
    """The same estimate with 'better' pointing up (flips bits-per-char differences)."""
    if sign > 0:
        return est
    low, high = (-est.high, -est.low) if est.has_ci else (None, None)
    return Estimate(-est.mean, low, high, est.n, est.paired)


def directional(est: Estimate, seeds: int, positive: bool = True) -> str:
    """Verdict of a claim that the difference is > 0 (or < 0 with positive=False)."""
    if seeds < MIN_SEEDS or not est.has_ci:
        return INCONCLUSIVE
    ok = est.low > 0 if positive else est.high < 0
    return SUPPORTED if ok else NOT_SUPPORTED


def equivalence(est: Estimate, seeds: int, margin: float) -> str:
    if seeds < MIN_SEEDS or not est.has_ci:
        return INCONCLUSIVE
    return SUPPORTED if -margin < est.low and est.high < margin else NOT_SUPPORTED


def combine(verdicts: Sequence[str]) -> str:
    """All parts must hold: any inconclusive part makes the whole inconclusive, unless
    another part already failed (then the claim is not supported whatever the rest says)."""
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    return SUPPORTED


def fill(f: Finding, est: Estimate, verdict: str, ctx: Context, cell_key: str) -> Finding:
    """Set effect, CI, n and verdict; name the missing cells when the data fell short."""
    f.effect, f.n, f.verdict = est.mean, est.n, verdict
    f.ci = (est.low, est.high) if est.has_ci else None
    f.needs = f"{ctx.task}: " + "; ".join(c.label() for c in NEEDS[cell_key]) + "; seeds 0,1,2"
    if verdict == INCONCLUSIVE:
        f.missing = missing_cells(ctx, NEEDS[cell_key]) or [
            f"{ctx.task}: fewer than {MIN_SEEDS} seeds shared by the compared runs"
        ]
    return f


def describe(name: str, est: Estimate, seeds: int) -> str:
    if est.n == 0:
        return f"{name}: no runs to compare"
    paired = "paired" if est.paired else "unpaired"
    return f"{name}: {est.text('{:.4g}')} ({paired}, n={est.n}, seeds={seeds})"


ClaimFn = Callable[[Context], Finding]
