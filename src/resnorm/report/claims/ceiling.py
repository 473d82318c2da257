"""A part on a bounded quantity that the claim expects to rise toward its bound (a token
cosine toward 1): not testable when the quantity is already within its minimum effect of
the bound where it is claimed to start from, since it cannot then rise by that much and the
part could only ever come out "equivalent", against the claim."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from resnorm.report.claims.verdicts import ALPHA, INCONCLUSIVE, NOT_TESTABLE, Part


def ceiling(values: pd.Series, m: float, bound: float = 1.0) -> str:
    """Why ``values`` (per-run) leave no room to rise by ``m`` below ``bound``, or ''."""
    x = pd.to_numeric(values, errors="coerce").dropna()
    if x.empty:
        return ""
    mean = float(x.mean())
    if bound - mean < m:
        return f"at its ceiling: mean {mean:.4g} is within {m:g} of {bound:g}"
    return ""


@dataclass
class CeilingPart(Part):
    """A Part whose outcome is 'not testable' when ``ceiling`` says why."""

    ceiling: str = ""

    def p_value(self) -> float:
        return math.nan if self.ceiling else super().p_value()

    def decide(self, alpha: float = ALPHA) -> str:
        if not self.testable:
            return INCONCLUSIVE  # missing runs come first
        return NOT_TESTABLE if self.ceiling else super().decide(alpha)

    def text(self) -> str:
        if not self.ceiling or self.est.n == 0:
            return super().text()
        return (
            f"{self.name}: {self.est.text('{:.4g}')} (seeds={self.seeds}; its starting point "
            f"is {self.ceiling}, so a rise of {self.threshold:g} is impossible; not tested) "
            f"→ {self.outcome}"
        )
