"""Preconditions of a claim's parts: a comparison that must come out a given way before a
part can be judged at all (both arms at matched training loss, a width that is not
saturated), decided on its own at the unadjusted α, never part of the Holm family; and the
part that stands in for one whose precondition failed, saying why."""

from __future__ import annotations

from dataclasses import dataclass

from resnorm.report.analysis.stats import NONE
from resnorm.report.claims.verdicts import ALPHA, NOT_TESTABLE, Part


def decided(part: Part, alpha: float = ALPHA) -> Part:
    """``part`` with its outcome from its own (1 − α) interval, unadjusted: a precondition is
    checked, not one of the claim's hypotheses."""
    part.p = part.p_value()
    part.p_adj = part.p
    part.primary = False
    part.outcome = part.decide(alpha)
    return part


@dataclass
class Untestable(Part):
    """A part that cannot be judged on this task (its precondition failed): its outcome is
    'not testable' whatever the family, and its text says why, with the numbers."""

    why: str = ""
    # 'inconclusive' instead while the claim lacks runs that could still refute it
    result: str = NOT_TESTABLE

    @property
    def testable(self) -> bool:
        return False

    def p_value(self) -> float:
        return float("nan")

    def decide(self, alpha: float = ALPHA) -> str:
        return self.result

    def text(self) -> str:
        return f"{self.name}: not testable here: {self.why} → {self.result}"


def untestable(name: str, why: str, expect: str, threshold: float) -> Untestable:
    """The stand-in for part ``name``, not testable because ``why``."""
    return Untestable(name, NONE, 0, expect, threshold, why=why)
