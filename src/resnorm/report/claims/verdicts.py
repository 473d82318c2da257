"""From estimates to verdicts: the hypotheses a claim's parts test, Holm across a report, and
the outcome of each part (better / equivalent / worse / not worse / inconclusive).

A part compares two things with its effect oriented so that the claimed direction is > 0
and states one threshold m: the minimum effect that matters, which is also the
equivalence margin. Its hypotheses, each a one-sided t-test (analysis.stats):
- better:     H0 δ <= 0, declared only when the mean is >= m as well;
- worse:      H0 δ >= 0, declared only when the mean is <= -m as well;
- equivalent: TOST, H0 |δ| >= m (the larger of the two one-sided p-values);
- not worse:  H0 δ <= -m (non-inferiority), for parts that expect it.
Every hypothesis of every testable part of one report enters one Holm family (alpha 0.05),
so the chance of any false declaration in a report is at most 5%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from resnorm.report.analysis.stats import Estimate, holm

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
    p: dict[str, float] = field(default_factory=dict)
    p_adj: dict[str, float] = field(default_factory=dict)
    outcome: str = INCONCLUSIVE

    @property
    def testable(self) -> bool:
        return self.seeds >= self.min_seeds and self.est.has_ci

    def hypotheses(self) -> dict[str, float]:
        """Raw one-sided p-values of the hypotheses this part tests (none if untestable)."""
        if not self.testable:
            return {}
        e, m = self.est, self.threshold
        out = {
            BETTER: e.p_above(0.0),
            WORSE: e.p_below(0.0),
            EQUIVALENT: max(e.p_above(-m), e.p_below(m)),
        }
        if self.expect == NOT_WORSE:
            out[NOT_WORSE] = e.p_above(-m)
        return out

    def decide(self, alpha: float = ALPHA) -> str:
        """The outcome from the adjusted p-values (set by ``resolve``)."""
        sig = {h for h, p in self.p_adj.items() if p <= alpha}
        m, mean = self.threshold, self.est.mean
        if BETTER in sig and mean >= m:
            return BETTER
        if WORSE in sig and mean <= -m:
            return WORSE
        if EQUIVALENT in sig:
            return EQUIVALENT
        if NOT_WORSE in sig:
            return NOT_WORSE
        return INCONCLUSIVE

    def supports(self) -> bool:
        return self.outcome in SUPPORTS[self.expect]

    def contradicts(self) -> bool:
        return self.outcome in CONTRADICTS[self.expect]

    def text(self) -> str:
        e = self.est
        if e.n == 0:
            return f"{self.name}: no runs to compare"
        paired = "paired" if e.paired else "unpaired"
        p = self.p_adj.get(self.expect)
        ptxt = f", p_Holm({self.expect})={p:.3g}" if p is not None and math.isfinite(p) else ""
        return (
            f"{self.name}: {e.text('{:.4g}')} ({paired}, seeds={self.seeds}; expects "
            f"{self.expect}, minimum effect {self.threshold:g}{ptxt}) → {self.outcome}"
        )


def combine(parts: Sequence[Part]) -> str:
    """All parts must support the claim; any contradiction refutes it."""
    if not parts:
        return INCONCLUSIVE
    if any(p.contradicts() for p in parts):
        return NOT_SUPPORTED
    if all(p.supports() for p in parts):
        return SUPPORTED
    return INCONCLUSIVE


def resolve(all_parts: Sequence[Part], alpha: float = ALPHA) -> int:
    """Holm-adjust every hypothesis of the given parts together and set each outcome.

    Returns the family size (the number of hypotheses tested).
    """
    for part in all_parts:
        part.p, part.p_adj = part.hypotheses(), {}
    flat = [(part, h, p) for part in all_parts for h, p in part.p.items()]
    adjusted = holm([p for _, _, p in flat])
    for (part, h, _), q in zip(flat, adjusted, strict=True):
        part.p_adj[h] = q
    for part in all_parts:
        part.outcome = part.decide(alpha) if part.testable else INCONCLUSIVE
    return len(flat)
