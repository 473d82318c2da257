"""Findings: each claim -> a stated test, an effect with a 95% CI over seeds, a verdict.

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

import pandas as pd

from resnorm.report.load import usable
from resnorm.report.needs import MIN_SEEDS, NEEDS, Cell
from resnorm.report.stats import Estimate, difference

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
# Equivalence margins (absolute, in the headline metric's units).
MARGINS = {"test/acc": 0.02, "test/bpc": 0.05}
# Keys on which two runs of different variants are paired: same task, setting and seed.
PAIR_KEYS = ("depth", "dim", "lr", "warmup_steps", "max_steps", "seed")
# Init-time probes do not depend on lr / warmup / budget: pair on architecture and seed only,
# so runs of an LR grid are not counted as extra (identical) replicates.
INIT_KEYS = ("depth", "dim", "seed")


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

    def arm(self, arch: str, **where: object) -> pd.DataFrame:
        g = self.runs[self.runs["arch"] == arch]
        for k, v in where.items():
            g = g[g[k] == v]
        return g


def missing_cells(ctx: Context, cells: Sequence[Cell]) -> list[str]:
    """Cells with fewer than MIN_SEEDS usable seeds in this task, with what is there."""
    out = []
    for c in cells:
        g = ctx.arm(c.arch)
        g = g[(g["depth"] == c.depth) & (g["lr"] == c.lr) & (g["warmup_steps"] == c.warmup)]
        seeds = sorted(int(s) for s in g["seed"].dropna().unique())
        if len(seeds) < MIN_SEEDS:
            a = ctx.all_runs
            bad = a[
                (a["arch"] == c.arch)
                & (a["depth"] == c.depth)
                & (a["lr"] == c.lr)
                & (a["warmup_steps"] == c.warmup)
                & ~a["usable"]
            ]
            extra = f"; not usable: {', '.join(sorted(set(bad['status'])))}" if len(bad) else ""
            have = f"seeds {seeds}" if seeds else "no runs" + elsewhere(ctx, c)
            out.append(f"{ctx.task} {c.label()} ({have}{extra})")
    return out


def elsewhere(ctx: Context, c: Cell) -> str:
    """Where this variant does have runs, so a reader sees a near miss (e.g. another depth)."""
    g = ctx.arm(c.arch)
    if g.empty:
        return ""
    sets = sorted({f"depth={r.depth:g} lr={r.lr:g} warmup={r.warmup_steps:g}"
                   for r in g.itertuples()})  # fmt: skip
    more = f", +{len(sets) - 3} more" if len(sets) > 3 else ""
    return f"; {c.arch} has runs at {', '.join(sets[:3])}{more}"


def n_seeds(pairs: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> int:
    """Distinct seeds behind a comparison: of the pairs, or of the smaller unpaired group."""
    if len(pairs):
        return int(pairs["seed"].nunique())
    return int(min(a["seed"].nunique(), b["seed"].nunique()))


def compare(
    a: pd.DataFrame, b: pd.DataFrame, value: str, keys: Sequence[str] = PAIR_KEYS
) -> tuple[Estimate, int]:
    """a - b on a column, paired by setting and seed when possible; returns (estimate, seeds)."""
    a = a[a[value].notna()]
    b = b[b[value].notna()]
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
    f.needs = "; ".join(c.label() for c in NEEDS[cell_key]) + " — seeds 0,1,2"
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


def contexts(df: pd.DataFrame) -> list[Context]:
    """One Context per task present in the runs (usable or not)."""
    from resnorm.report.probes import add_probe_columns

    ok = add_probe_columns(usable(df))
    out = []
    for task in sorted(df["task"].dropna().unique()):
        out.append(Context(task, ok[ok["task"] == task], df[df["task"] == task]))
    return out


def all_findings(df: pd.DataFrame) -> list[Finding]:
    """Every claim on every task of the report, in claim order."""
    from resnorm.report.claims_article import ARTICLE_CLAIMS
    from resnorm.report.claims_literature import LITERATURE_CLAIMS

    claims: list[ClaimFn] = [*LITERATURE_CLAIMS, *ARTICLE_CLAIMS]
    ctxs = contexts(df)
    return [fn(ctx) for fn in claims for ctx in ctxs]
