"""From estimates to verdicts: one decision per part, Holm across a study's primary parts,
and the outcome of each part (better / equivalent / worse / not worse / inconclusive).

A part compares two things with its effect oriented so that the claimed direction is > 0
and states one threshold m: the minimum effect that matters, which is also the
equivalence margin. Each part reaches **one** decision from **one** two-sided interval at
level 1 − α (α the part's Holm-adjusted level):
- better:      the interval lies above 0 and the mean is >= m;
- worse:       the interval lies below 0 and the mean is <= -m;
- equivalent:  the interval lies inside (-m, m);
- not worse:   (parts that expect non-inferiority) the interval lies above -m;
- otherwise inconclusive.
The candidate outcome follows from the mean alone (>= m: better, <= -m: worse, else
equivalent; for non-inferiority parts > -m: not worse), so a part has one p-value: the
smallest α at which its interval reaches the candidate, i.e. twice the candidate's
one-sided t p-value (TOST's larger p for equivalence). Why the (1 − α) interval and not
TOST's usual (1 − 2α): at a true δ = 0, "better" and "worse" are both false and a (1 − 2α)
interval excludes 0 with probability 2α; with (1 − α) every δ has false declarations of
total probability <= α (at δ = 0: α/2 each side; at |δ| = m: equivalence α/2 plus the
wrong direction < α/2).
Only the study's *primary* parts form the Holm family (alpha 0.05); the others are
exploratory: decided at the unadjusted α and marked so. A part whose per-seed values are
all identical is one measurement copied, not n replicates: outside the Holm family, it is
an exact check (its value against m) when the part declares its quantity seed-independent
(``deterministic``), else not testable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from resnorm.report.analysis.failures import Count, p_fewer
from resnorm.report.analysis.stats import NONE, Estimate, holm

ALPHA = 0.05
SUPPORTED, NOT_SUPPORTED = "supported", "not supported"
INCONCLUSIVE, NOT_TESTABLE = "inconclusive", "not testable"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTABLE)
BETTER, EQUIVALENT, WORSE, NOT_WORSE = "better", "equivalent", "worse", "not worse"
# What each expectation counts as support and as contradiction.
SUPPORTS = {BETTER: {BETTER}, EQUIVALENT: {EQUIVALENT}, NOT_WORSE: {BETTER, EQUIVALENT, NOT_WORSE}}
CONTRADICTS = {BETTER: {WORSE, EQUIVALENT}, EQUIVALENT: {BETTER, WORSE}, NOT_WORSE: {WORSE}}


@dataclass
class Part:
    """One tested comparison of a claim; ``est`` is oriented (claimed direction > 0)."""

    name: str
    est: Estimate
    seeds: int
    expect: str  # BETTER | EQUIVALENT | NOT_WORSE
    threshold: float  # minimum effect that matters = equivalence margin
    min_seeds: int = 3
    p: float = math.nan  # the p-value of the candidate decision (NaN: not in a family)
    p_adj: float = math.nan  # Holm-adjusted over the primary family (exploratory: = p)
    outcome: str = INCONCLUSIVE
    primary: bool = True  # in the study's Holm family; else exploratory
    note: str = ""  # e.g. both arms' failure counts, shown with the effect
    # the quantity is known not to depend on the seed (a count, a formula): identical
    # values are then an exact check; otherwise they are one measurement copied n times
    deterministic: bool = False

    @property
    def testable(self) -> bool:
        return self.seeds >= self.min_seeds and self.est.has_ci

    @property
    def exact(self) -> bool:
        """Every per-seed value identical: the quantity does not vary with the seed, so the
        seeds are copies of one measurement, not replicates."""
        return self.testable and self.est.se == 0

    def candidate(self) -> str:
        """The only outcome this part's interval can reach, from its mean."""
        m, mean = self.threshold, self.est.mean
        if self.expect == NOT_WORSE:
            return NOT_WORSE if mean > -m else WORSE
        return BETTER if mean >= m else WORSE if mean <= -m else EQUIVALENT

    def p_value(self) -> float:
        """Smallest α at which the (1 − α) interval reaches ``candidate`` (NaN if untested)."""
        if not self.testable or self.exact:
            return math.nan
        e, m = self.est, self.threshold
        one_sided = {
            BETTER: lambda: e.p_above(0.0),
            WORSE: lambda: e.p_below(0.0),
            EQUIVALENT: lambda: max(e.p_above(-m), e.p_below(m)),
            NOT_WORSE: lambda: e.p_above(-m),
        }[self.candidate()]()
        return min(1.0, 2.0 * one_sided)

    def check(self) -> str:
        """The outcome of an exact part: its one value against m."""
        m, v = self.threshold, self.est.mean
        for edge in (m, -m):  # a value equal to ±m up to float rounding reaches it
            v = edge if math.isclose(v, edge, rel_tol=1e-9) else v
        if self.expect == NOT_WORSE:
            return NOT_WORSE if v > -m else WORSE
        return BETTER if v >= m else WORSE if v <= -m else EQUIVALENT

    def decide(self, alpha: float = ALPHA) -> str:
        """The outcome from the adjusted p-value (set by ``resolve``)."""
        if not self.testable:
            return INCONCLUSIVE
        if self.exact:
            return self.check() if self.deterministic else NOT_TESTABLE
        return self.candidate() if self.p_adj <= alpha else INCONCLUSIVE

    def supports(self) -> bool:
        return self.outcome in SUPPORTS[self.expect]

    def contradicts(self) -> bool:
        return self.outcome in CONTRADICTS[self.expect]

    def text(self) -> str:
        e = self.est
        if e.n == 0:
            return f"{self.name}: no runs to compare"
        paired = "paired" if e.paired else "unpaired"
        if self.exact and self.deterministic:
            how = f"identical in all {self.seeds} seeds: an exact check, not replicates"
        elif self.exact:
            how = (
                f"identical in all {self.seeds} seeds: one measurement, not {self.seeds} "
                "replicates; the quantity is not declared seed-independent, so not tested"
            )
        elif math.isfinite(self.p_adj):
            label = "p_Holm" if self.primary else "p (exploratory, not in the Holm family)"
            how = f"{label}({self.candidate()})={self.p_adj:.3g}"
        else:
            how = ""
        note = self.note or e.note
        note = f"; {note}" if note else ""
        how = f", {how}" if how else ""
        return (
            f"{self.name}: {e.text('{:.4g}')} ({paired}, seeds={self.seeds}{note}; expects "
            f"{self.expect}, minimum effect {self.threshold:g}{how}) → {self.outcome}"
        )


@dataclass
class FailurePart(Part):
    """A part on failure counts: ``fewer`` is the arm claimed to fail less often than
    ``more``. Better: it does (one-sided Fisher's exact test on failed vs trained seeds);
    worse: the other way round; never equivalent (a few seeds cannot bound a rate near 0).
    Its p is twice the one-sided p in the observed direction, like a score part's."""

    fewer: Count = Count(0, 0)
    more: Count = Count(0, 0)
    arms: tuple[str, str] = ("a", "b")

    @property
    def testable(self) -> bool:
        return min(self.fewer.n, self.more.n) >= self.min_seeds

    @property
    def exact(self) -> bool:
        return False

    def supports(self) -> bool:
        """Not required to be significant, only not to contradict: at 8 seeds an exact test
        cannot separate rates below about 6/8 vs 0/8, so requiring it would make every
        claim with such a part unreachable; the score parts carry the claim."""
        return self.testable and not self.contradicts()

    def candidate(self) -> str:
        ra, rb = self.fewer.k / max(self.fewer.n, 1), self.more.k / max(self.more.n, 1)
        return BETTER if ra < rb else WORSE if ra > rb else EQUIVALENT

    def p_value(self) -> float:
        if not self.testable or self.candidate() == EQUIVALENT:
            return math.nan  # equal rates: nothing to decide
        a, b = (self.fewer, self.more) if self.candidate() == BETTER else (self.more, self.fewer)
        return min(1.0, 2.0 * p_fewer(a, b))

    def text(self) -> str:
        label = "p_Holm" if self.primary else "p (exploratory, not in the Holm family)"
        p = f", {label}={self.p_adj:.3g}" if math.isfinite(self.p_adj) else ""
        return (
            f"{self.name}: {self.arms[0]} {self.fewer.text()}, {self.arms[1]} "
            f"{self.more.text()} (expects {self.arms[0]} to fail less often; Fisher's exact "
            f"test{p}) → {self.outcome}"
        )


def failure_part(name: str, fewer: Count, more: Count, arms: tuple[str, str], min_seeds: int):
    """A FailurePart expecting ``fewer`` to fail less often than ``more``."""
    n = min(fewer.n, more.n)
    return FailurePart(name, NONE, n, BETTER, 0.0, min_seeds, fewer=fewer, more=more, arms=arms)


def combine(parts: Sequence[Part]) -> str:
    """All parts must support the claim; any contradiction refutes it."""
    if not parts:
        return INCONCLUSIVE
    if any(p.contradicts() for p in parts):
        return NOT_SUPPORTED
    if any(p.outcome == NOT_TESTABLE for p in parts):  # seeds that are copies of one run
        return NOT_TESTABLE
    if all(p.supports() for p in parts):
        return SUPPORTED
    return INCONCLUSIVE


def resolve(all_parts: Sequence, alpha: float = ALPHA) -> int:
    """One p per part; Holm over the primary parts; set each outcome.

    Exploratory parts keep their raw p (decided at ``alpha`` unadjusted, marked so). Returns
    the family size (the number of primary parts with a p-value).
    """
    for part in all_parts:
        part.p = part.p_value()
    family = [part for part in all_parts if part.primary and math.isfinite(part.p)]
    for part, q in zip(family, holm([part.p for part in family]), strict=True):
        part.p_adj = q
    for part in all_parts:
        if not part.primary:
            part.p_adj = part.p
        elif not math.isfinite(part.p):
            part.p_adj = math.nan
        part.outcome = part.decide(alpha)
    return len(family)
