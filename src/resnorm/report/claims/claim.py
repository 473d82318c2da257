"""A claim as one unit: its statement, source, the cells it needs, its test, the minimum
effects its probe parts use, and how far its test is from the setting its source measured.

Each claim's ``Claim`` is defined next to its test function (literature_*.py, article*.py)
and listed once in claims.registry; the findings study (claims.case_files), the report's
claims, their order and the "missing" lines all come from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnorm.report.analysis.stats import Estimate
from resnorm.report.claims.finding import Finding
from resnorm.report.claims.needs import MIN_SEEDS, Cell
from resnorm.report.claims.rules import PROBE_MIN_EFFECTS, ClaimFn, Context
from resnorm.report.claims.verdicts import BETTER, Part

# The setting of the embedded tests, for each claim's distance from its source's setting.
# BUDGET is filled in per finding with the step budgets of its task's runs (``budget``).
BUDGET = "{budget}"
HERE = f"here: width 64, depth 8 (c: also 2), {BUDGET}, lr 1e-3, the embedded tasks"
# (d), (g): every variant at its own best lr of the grid, chosen on validation
OWN_LR = (
    f"here: width 64, depth 8, {BUDGET}, each variant at its own val-best lr of 1e-4 … 1e-1, "
    "the embedded tasks"
)


@dataclass(frozen=True)
class Claim:
    """One claim. ``test`` judges it on one task's runs and returns its Finding (built with
    ``finding``). Score parts take the minimum effect / equivalence margin of the task's
    metric (rules.MIN_EFFECTS, rules.MARGINS); probe parts take their quantity's
    (rules.PROBE_MIN_EFFECTS), and a claim compares only the probe quantities it declares."""

    key: str  # "a" … "r": the finding's id
    statement: str
    source: str
    needs: tuple[Cell, ...]  # every cell its test reads: the findings study runs them
    test: ClaimFn
    paper: str  # how far the test here is from the source's setting (width, depth, data, steps)
    probes: tuple[str, ...] = ()  # probe quantities its parts compare

    @property
    def min_effects(self) -> dict[str, float]:
        """The minimum effect of each probe quantity this claim compares."""
        return {q: PROBE_MIN_EFFECTS[q] for q in self.probes}

    def finding(self, ctx: Context, test: str, unit: str = "") -> Finding:
        """This claim's Finding on ``ctx``'s task, with ``test`` saying how it is judged."""
        return Finding(
            self.key,
            self.statement,
            self.source,
            ctx.task,
            test,
            unit=unit,
            cells=self.needs,
            paper=self.paper.replace(BUDGET, budget(ctx)),
        )

    def probe_part(
        self, name: str, est: Estimate, seeds: int, column: str, expect: str = BETTER
    ) -> Part:
        """A part on a probe quantity, oriented by the caller, with that quantity's minimum
        effect; the quantity must be one this claim declares."""
        if column not in self.probes:
            raise ValueError(f"claim ({self.key}) does not declare probe quantity {column!r}")
        return Part(name, est, seeds, expect, PROBE_MIN_EFFECTS[column], MIN_SEEDS)


def budget(ctx: Context) -> str:
    """The step budgets of this task's runs, e.g. 'speech_synth 800 steps' (a study may
    hold several: the demo's 200 and 300)."""
    steps = ctx.runs["max_steps"].dropna() if "max_steps" in ctx.runs else ()
    values = ", ".join(f"{int(v)}" for v in sorted(set(steps)))
    return f"{ctx.task} {values} steps" if values else "each task's own step budget"
