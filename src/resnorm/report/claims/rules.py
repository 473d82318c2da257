"""What every claim's test shares: the runs of one task (Context), paired comparisons, the
thresholds the verdicts use, and how a Finding (claims.finding) gets its parts and verdict.

Verdict rules (docs/findings.md; the tests themselves are in claims.verdicts):
- not testable: the reference model did not learn the task at the judged setting (its mean
  score closes less than LEARN_FRACTION of the gap from chance to a perfect score).
- inconclusive: a compared group has fewer than MIN_SEEDS seeds with usable runs at one
  complete setting (``missing`` names the cells this task lacks), or no outcome is
  significant after Holm.
- supported: every part's outcome is the one the claim expects; not supported: some part's
  outcome contradicts it (e.g. "worse", or "equivalent" where an effect was claimed).
One Finding per claim and task: a claim can hold on one modality and fail on another.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import pandas as pd

from resnorm.report.analysis import failures
from resnorm.report.analysis.cells import at_shared
from resnorm.report.analysis.stats import NONE, Estimate, difference
from resnorm.report.claims.finding import Finding
from resnorm.report.claims.missing import at_width, base_width, by_cell, missing_cells
from resnorm.report.claims.needs import MIN_SEEDS, SEEDS
from resnorm.report.claims.verdicts import (
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    NOT_WORSE,
    SUPPORTED,
    Part,
    combine,
    failure_part,
)

__all__ = ["Finding", "BETTER", "EQUIVALENT", "NOT_WORSE", "SUPPORTED", "NOT_SUPPORTED"]
__all__ += ["NOT_TESTABLE", "Part"]

# Equivalence margins (absolute, in the headline metric's units).
MARGINS = {"test/acc": 0.02, "test/bpc": 0.05}
# The smallest score difference that matters for a directional claim.
MIN_EFFECTS = {"test/acc": 0.01, "test/bpc": 0.02}
# The same for the probe quantities some claims compare (their own units).
PROBE_MIN_EFFECTS = {
    "init_grad_slope": 0.1,  # ln-growth across the stack: a 10% rise first -> last layer
    "init_grad_spread": 0.1,  # ln(max/min) of per-layer gradient norms
    "init_cos_last": 0.05,  # mean pairwise token cosine
    "lr_sensitivity": 0.05,  # nats
    "steps_to_target": 50.0,  # steps: one validation interval of the findings study
    "gen_gap": 0.02,  # nats: test loss − final train loss
    # mean |ln(final / init)| of the RMS each sublayer is fed (after its norm): ~10%
    "sublayer_input_drift": 0.1,
}
# A reference model "learned the task" when its mean closes this much of chance -> perfect.
LEARN_FRACTION = 0.25
# Keys on which two runs of different variants are paired: same task, setting and seed.
PAIR_KEYS = ("depth", "dim", "heads", "lr", "warmup_steps", "max_steps", "seed")
# Init-time probes do not depend on lr / warmup / budget: pair on architecture and seed only,
# so runs of an LR grid are not counted as extra (identical) replicates.
INIT_KEYS = ("depth", "dim", "heads", "seed")
DEEP_MIN = 6  # "deep" claims are judged at the deepest complete depth both arms share, if >= this


@dataclass
class Context:
    """The runs of one task, ready for the claim functions.

    ``runs`` holds the base width only (``base_width``): every claim but (r) is judged at
    one width, so runs of a wider cell never enter its settings or its means. ``every_width``
    keeps all usable runs, for the claim that compares widths.
    """

    task: str
    runs: pd.DataFrame  # usable runs of this task at the base width, with probe columns
    all_runs: pd.DataFrame  # every run of this task, whatever its status or width
    every_width: pd.DataFrame | None = None  # usable runs at every width (default: runs)
    base_dim: float = field(init=False, default=math.nan)

    def __post_init__(self) -> None:
        if self.every_width is None:
            self.every_width = self.runs
        self.base_dim = base_width(self.every_width)
        self.runs = at_width(self.runs, self.base_dim)

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

    @property
    def min_effect(self) -> float:
        return MIN_EFFECTS.get(self.metric, 0.01)

    @cached_property
    def index(self) -> tuple[dict, dict]:
        """Usable seeds, and statuses of unusable runs, per (arch, depth, lr, warmup, heads,
        width) at every width."""
        bad = self.all_runs[~self.all_runs["usable"]]
        return by_cell(self.widths, "seed", self.base_dim), by_cell(bad, "status", self.base_dim)

    @property
    def widths(self) -> pd.DataFrame:
        """The usable runs of this task at every width."""
        return self.runs if self.every_width is None else self.every_width

    @property
    def delta(self) -> str:
        """Unit of a score difference, e.g. 'Δacc' or 'Δbpc (lower is better)'."""
        return f"Δ{self.metric.split('/')[-1]}" + (" (lower is better)" if self.sign < 0 else "")

    def arm(self, arch: str, dim: float | None = None, **where: object) -> pd.DataFrame:
        """The runs of ``arch`` at the base width, or at width ``dim``, matching ``where``."""
        if dim is None or dim == self.base_dim:
            g = self.runs[self.runs["arch"] == arch]
        else:
            g = self.widths[self.widths["arch"] == arch]
            g = g[g["dim"] == dim] if "dim" in g else g.iloc[0:0]
        for k, v in where.items():
            g = g[g[k] == v]
        return g

    def learned(self, runs: pd.DataFrame) -> str:
        """'' when these (reference) runs learned the task, else why the claim is not testable.

        Learned: the mean score closes LEARN_FRACTION of the gap from chance to perfect
        (accuracy 1, bits per char 0). No runs: '' (the claim is inconclusive instead).
        """
        if runs.empty or "chance" not in runs:
            return ""
        chance = runs["chance"].dropna()
        if chance.empty:
            return ""
        mean, base = float(runs["value"].mean()), float(chance.iloc[0])
        perfect = 0.0 if self.sign < 0 else 1.0
        frac = (mean - base) / (perfect - base) if perfect != base else math.nan
        if math.isfinite(frac) and frac >= LEARN_FRACTION:
            return ""
        arch = ", ".join(sorted(set(runs["arch"])))
        return (
            f"{arch} did not learn {self.task} here: mean {self.metric} {mean:.4g} vs chance "
            f"{base:.4g} closes {frac:.0%} of the gap to perfect (needs {LEARN_FRACTION:.0%})"
        )

    def part(
        self, name: str, est: Estimate, seeds: int, expect: str = BETTER, score: bool = True
    ) -> Part:
        """A part on scores (oriented so that better is > 0), threshold from the metric."""
        threshold = self.margin if expect in (EQUIVALENT, NOT_WORSE) else self.min_effect
        est = oriented(est, self.sign) if score else est
        return Part(name, est, seeds, expect, threshold, MIN_SEEDS)

    def failure_part(
        self, name: str, fewer: pd.DataFrame, more: pd.DataFrame, arms: tuple[str, str] = ()
    ) -> Part:
        """A part on failure counts: ``fewer``'s runs are claimed to fail less often; ``arms``
        names the two (default: their architectures)."""
        arms = arms or (_label(fewer), _label(more))
        return failure_part(name, failures.count(fewer), failures.count(more), arms, MIN_SEEDS)


def shared_depths(ctx: Context, *archs: str) -> list[float]:
    """Depths at which every arch has a complete cell: MIN_SEEDS usable seeds at one setting
    that all of them share. A lone deeper run of one seed adds no depth."""
    setting = [k for k in PAIR_KEYS if k != "seed"]
    cells = None
    for a in archs:
        g = ctx.arm(a)
        counts = g.groupby(setting, dropna=False)["seed"].nunique() if len(g) else pd.Series()
        done = set(counts[counts >= MIN_SEEDS].index)
        cells = done if cells is None else cells & done
    return sorted({k[0] for k in cells or ()})


def shared_deepest(ctx: Context, *archs: str) -> float:
    """The deepest of ``shared_depths`` (NaN when there is none)."""
    depths = shared_depths(ctx, *archs)
    return depths[-1] if depths else math.nan


def no_deep(*archs: str) -> str:
    return f"no depth ≥ {DEEP_MIN} at which {' and '.join(archs)} all have {MIN_SEEDS} usable seeds"


def compare(
    a: pd.DataFrame,
    b: pd.DataFrame,
    value: str,
    keys: Sequence[str] = PAIR_KEYS,
    when_trained: bool = True,
) -> tuple[Estimate, int]:
    """a - b on a column, paired by setting and seed; returns (estimate, seeds).

    Paired comparisons use the complete settings only (MIN_SEEDS paired seeds each) and
    average each seed over them (analysis.stats.difference). Without shared seeds the groups
    are compared unpaired, and then only at settings (keys other than the seed) both have.
    Scores ("value") are compared *when it trains*: failed runs (analysis.failures) are
    left out, so a pair counts only where both arms trained; the estimate's note states
    both arms' failure counts. ``when_trained=False`` keeps them (claims about failing).
    """
    note = ""
    if value == "value" and not a.empty and not b.empty:
        # failures at the settings both arms have: those the scores are compared at
        counts = tuple(map(failures.count, at_shared(a, b, [k for k in keys if k != "seed"])))
        note = failures.note(*counts, (_label(a), _label(b)))
        if when_trained:
            a, b = failures.trained(a), failures.trained(b)
            note = "seeds where both trained; " + note
    est, seeds = _compare(a, b, value, keys)
    return (replace(est, note=note) if note and est.n else est), seeds


def _label(runs: pd.DataFrame) -> str:
    return "/".join(sorted({str(x) for x in runs["arch"]})) if "arch" in runs else "a"


def _compare(
    a: pd.DataFrame, b: pd.DataFrame, value: str, keys: Sequence[str]
) -> tuple[Estimate, int]:
    a = a[a[value].notna()]
    b = b[b[value].notna()]
    a, b = at_shared(a, b, [k for k in keys if k != "seed"])
    if a.empty or b.empty:
        return NONE, 0
    est, pairs = difference(a, b, list(keys), value, MIN_SEEDS)
    if len(pairs):
        return est, int(pairs["seed"].nunique())
    return est, int(min(a["seed"].nunique(), b["seed"].nunique()))


def oriented(est: Estimate, sign: int) -> Estimate:
    """The same estimate with 'better' pointing up (flips bits-per-char differences)."""
    return est if sign > 0 else est.flipped()


def fill(f: Finding, parts: Sequence[Part], ctx: Context) -> Finding:
    """Attach the tested parts (the first is the headline) and what the finding needs (its
    claim's cells, ``f.cells``).

    The verdict is set later, once the report's Holm family is known (``finish``).
    """
    f.parts = list(parts)
    head = parts[0].est if parts else NONE
    f.effect, f.n = head.mean, head.n
    f.ci = (head.low, head.high) if head.has_ci else None
    seeds = f"seeds {SEEDS[0]}–{SEEDS[-1]}"
    f.needs = f"{ctx.task}: " + "; ".join(c.label() for c in f.cells) + f"; {seeds}"
    f.missing = missing_cells(ctx, f.cells)
    return f


def finish(f: Finding, ctx: Context | None = None) -> Finding:
    """Set the verdict from the parts' (Holm-adjusted) outcomes."""
    if f.not_testable:
        f.verdict = NOT_TESTABLE
    elif f.fixed is not None:
        f.verdict = f.fixed
    else:
        f.verdict = combine(f.parts)
    if f.fixed is None and f.parts:
        # the outcome shown is the headline part's, or the part that refutes the claim
        against = [i for i, p in enumerate(f.parts) if p.contradicts()]
        i = against[0] if f.verdict == NOT_SUPPORTED and against else 0
        f.outcome = f.parts[i].outcome if i == 0 else f"part {i + 1}: {f.parts[i].outcome}"
    f.details = [p.text() for p in f.parts] + f.details
    if f.paper:
        f.details.append("Distance from the source's setting: " + f.paper)
    if f.not_testable:
        f.details.insert(0, f.untestable)
    if f.verdict != INCONCLUSIVE:
        f.missing = []
    elif not f.missing:
        f.missing = [f"{f.task}: more seeds, or an effect clear of the Holm-corrected threshold"]
    return f


def describe(name: str, est: Estimate, seeds: int) -> str:
    """A reported (untested) comparison: mean, 95% CI and seeds."""
    if est.n == 0:
        return f"{name}: no runs to compare"
    paired, note = "paired" if est.paired else "unpaired", f"; {est.note}" if est.note else ""
    return f"{name}: {est.text('{:.4g}')} ({paired}, n={est.n}, seeds={seeds}{note}; not tested)"


ClaimFn = Callable[[Context], Finding]
