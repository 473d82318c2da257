"""A Finding: one claim judged on one task — its stated test, the tested parts, the effect
with its interval, the verdict, and what the task lacks to judge it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from resnorm.report.claims.needs import Cell
from resnorm.report.claims.verdicts import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Part


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
    parts: list[Part] = field(default_factory=list)
    outcome: str = ""  # the headline part's outcome (better / equivalent / worse / ...)
    fixed: str | None = None  # verdict of an exact, non-statistical check
    untestable: str = ""  # why the reference did not learn the task here
    cells: tuple[Cell, ...] = ()  # the cells the claim needs (its Claim's)
    paper: str = ""  # how far the test here is from the source's setting (its Claim's)
    caveat: str = ""  # a condition of the verdict shown with it (e.g. a protocol not met)

    def effect_text(self) -> str:
        if not math.isfinite(self.effect):
            return "n/a"
        if self.ci is None:
            return f"{self.effect:.4g} (no CI)"
        return f"{self.effect:.4g} [{self.ci[0]:.4g}, {self.ci[1]:.4g}]"

    @property
    def p_holm(self) -> float:
        """Holm-adjusted p-value of the headline part's decision (NaN if untested, an exact
        check, or exploratory: its p is then not Holm-adjusted)."""
        if not self.parts or not self.parts[0].primary:
            return math.nan
        return self.parts[0].p_adj

    def failures_text(self) -> str:
        """Both arms' failure counts beside the effect: the headline's, or a failure part's."""
        for part in self.parts:
            fewer, more = getattr(part, "fewer", None), getattr(part, "more", None)
            if fewer is not None and more is not None and (fewer.n or more.n):
                return f"{part.arms[0]} {fewer.text()}; {part.arms[1]} {more.text()}"
        notes = [p.note or p.est.note for p in self.parts[:1]]
        return notes[0].replace("seeds where both trained; ", "") if notes and notes[0] else ""

    @property
    def exploratory(self) -> bool:
        """Not one of the study's primary claims: outside the Holm family."""
        return bool(self.parts) and not any(p.primary for p in self.parts)

    @property
    def not_testable(self) -> bool:
        """The reference did not learn the task where the claim could be judged. (Missing
        runs come first: without a comparison the finding is inconclusive.)"""
        return bool(self.untestable) and any(p.testable for p in self.parts)

    def verdict_text(self) -> str:
        decided = self.verdict in (SUPPORTED, NOT_SUPPORTED)
        notes = [x for x in (self.outcome, self.caveat) if x] if decided else []
        if self.exploratory and self.fixed is None:
            notes.append("exploratory")
        return f"{self.verdict} ({'; '.join(notes)})" if notes else self.verdict
