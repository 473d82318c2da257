"""A claim component that shows in either of several forms, judged as one part.

"Post-LN needs warmup" or "deep stacks stop training" show either as failures (runs that do
not train at all: an exact test on failure counts, claims.verdicts.FailurePart) or as a
lower score on the seeds that do train (a score part). Requiring both would make the claim
unreachable exactly where it is strongest: when an arm fails on every seed, no seed is left
to compare scores on. So the component is one part (``EitherPart``) with one p-value:
- better: some form is better — a union-intersection test, Bonferroni over the k forms
  (p = k × the smallest p of the forms whose estimate points the claimed way);
- refuted (its form's outcome, e.g. equivalent or worse): no form points the claimed way and
  some form contradicts it (p = k × the smallest p among those), so a failure excess that is
  only suggestive (e.g. 2/8 vs 0/8) keeps a score equivalence from refuting the claim;
- otherwise inconclusive.
That p enters the study's Holm family like any part's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from resnorm.report.analysis.failures import Count
from resnorm.report.analysis.stats import NONE
from resnorm.report.claims.verdicts import BETTER, CONTRADICTS, INCONCLUSIVE, FailurePart, Part


@dataclass
class EitherPart(Part):
    """One part that holds when any of ``forms`` (each expecting BETTER) does."""

    forms: tuple[Part, ...] = ()

    @property
    def testable(self) -> bool:
        return any(f.testable for f in self.forms)

    @property
    def exact(self) -> bool:
        return False

    def _tested(self) -> list[Part]:
        """The forms with a p-value (testable, not copies of one measurement)."""
        out = []
        for f in self.forms:
            f.p = f.p_value()
            if math.isfinite(f.p):
                out.append(f)
        return out

    def _leaning(self) -> list[Part]:
        return [f for f in self.forms if f.testable and f.candidate() == BETTER]

    def candidate(self) -> str:
        if self._leaning():
            return BETTER
        against = [f for f in self._tested() if f.candidate() in CONTRADICTS[f.expect]]
        return min(against, key=lambda f: f.p).candidate() if against else INCONCLUSIVE

    def p_value(self) -> float:
        tested = self._tested()
        if self._leaning():
            ps = [f.p for f in tested if f.candidate() == BETTER]
        else:
            ps = [f.p for f in tested if f.candidate() in CONTRADICTS[f.expect]]
        return min(1.0, len(self.forms) * min(ps)) if ps else math.nan

    def _failure(self) -> FailurePart | None:
        return next((f for f in self.forms if isinstance(f, FailurePart)), None)

    # the failure form's counts, shown beside the finding's effect (Finding.failures_text)
    @property
    def fewer(self) -> Count | None:
        f = self._failure()
        return f.fewer if f else None

    @property
    def more(self) -> Count | None:
        f = self._failure()
        return f.more if f else None

    @property
    def arms(self) -> tuple[str, str]:
        f = self._failure()
        return f.arms if f else ("a", "b")

    def text(self) -> str:
        forms = "; ".join(f"({i}) {_form_text(f)}" for i, f in enumerate(self.forms, 1))
        label = "p_Holm" if self.primary else "p (exploratory, not in the Holm family)"
        p = f", {label}({self.candidate()})={self.p_adj:.3g}" if math.isfinite(self.p_adj) else ""
        return (
            f"{self.name}: holds if either form is better — {forms} (one decision, Bonferroni "
            f"×{len(self.forms)} over the forms{p}) → {self.outcome}"
        )


def _form_text(f: Part) -> str:
    p = f", p({f.candidate()})={f.p:.3g}" if math.isfinite(f.p) else ""
    if isinstance(f, FailurePart):
        return (
            f"{f.name}: {f.arms[0]} {f.fewer.text()}, {f.arms[1]} {f.more.text()} (expects "
            f"{f.arms[0]} to fail less often; Fisher's exact test{p})"
        )
    if f.est.n == 0:
        return f"{f.name}: no runs to compare"
    paired = "paired" if f.est.paired else "unpaired"
    note = f"; {f.note or f.est.note}" if (f.note or f.est.note) else ""
    return (
        f"{f.name}: {f.est.text('{:.4g}')} ({paired}, seeds={f.seeds}{note}; minimum effect "
        f"{f.threshold:g}{p})"
    )


def either(name: str, *forms: Part) -> EitherPart:
    """An EitherPart of ``forms``; its estimate (the finding's effect when it is the
    headline) is that of its first score form."""
    score = next((f for f in forms if not isinstance(f, FailurePart)), None)
    est = score.est if score is not None else NONE
    seeds = max((f.seeds for f in forms), default=0)
    note = score.note or score.est.note if score is not None else ""
    return EitherPart(name, est, seeds, BETTER, 0.0, forms[0].min_seeds, note=note, forms=forms)
