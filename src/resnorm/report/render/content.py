"""What the report says, as plain strings and tables, shared by the HTML and Markdown
renderers so that both always state the same numbers."""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd

from resnorm.report.analysis import frontier, lr_sensitivity
from resnorm.report.analysis.failures import FAIL_FRACTION
from resnorm.report.analysis.stats import LEVEL
from resnorm.report.analysis.table import TARGET_FRACTION, group_keys
from resnorm.report.build import ReportData
from resnorm.report.claims import budget
from resnorm.report.claims.modalities import across
from resnorm.report.claims.needs import MIN_SEEDS
from resnorm.report.claims.rules import LEARN_FRACTION, MARGINS, MIN_EFFECTS, PROBE_MIN_EFFECTS
from resnorm.report.claims.verdicts import ALPHA
from resnorm.report.sources.rows import USABLE

Table = tuple[list[str], list[list[str]]]
HEADLINE = "depth"  # the figure shown under the verdicts: score vs depth per variant and task
MATRIX_NOTE = (
    "Each claim on each task: verdict (outcome) · effect [95% CI], in the claim's unit; "
    "Holm-corrected over the study's primary claims (others: exploratory). The Findings "
    "section below has each test, its parts, what is missing and how far the setting is "
    "from the source's."
)
SECTION_TITLES = {
    "depth": "Headline metric vs depth",
    "stability": "Stability heatmaps",
    "gradients": "Per-layer gradient norm at initialisation",
    "rank": "Rank collapse",
    "curves": "Training curves",
    "lr": "LR sensitivity",
    "frontier": "Trainability frontier",
}


def fmt(value: object, digits: int = 4) -> str:
    """Numbers for tables: NaN as '–', integers without decimals."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def ci_text(mean: float, low: float | None, high: float | None) -> str:
    if pd.isna(mean):
        return "–"
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"{fmt(mean)} (no CI)"
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def status_line(data: ReportData) -> str:
    counts = Counter(data.runs["status"])
    parts = [f"{n} {s}" for s, n in sorted(counts.items())]
    used = int(data.runs["usable"].sum())
    return (
        f"{len(data.runs)} runs ({', '.join(parts)}); {used} aggregated "
        f"(statuses {', '.join(USABLE)})."
    )


def summary_table(data: ReportData) -> Table:
    t = data.table
    if t.empty:
        return [], []
    keys = group_keys(data.runs)
    head = [{"arch": "variant"}.get(k, k) for k in keys] + [
        "metric",
        f"mean [{LEVEL:.0%} CI]",
        "n runs",
        "seeds",
        "divergence rate",
        "loss spikes / run",
        "steps to target",
        "reached",
        "not aggregated",
    ]
    rows = []
    for r in t.itertuples():
        rows.append(
            [fmt(getattr(r, k)) for k in keys]
            + [
                r.metric,
                ci_text(r.mean, r.ci_low, r.ci_high),
                str(r.n),
                str(r.seeds),
                fmt(r.divergence_rate, 2),
                fmt(r.spikes_mean, 2),
                fmt(r.steps_to_target),
                r.reached,
                str(r.not_aggregated),
            ]
        )
    return head, rows


def targets_line(data: ReportData) -> str:
    if not data.targets:
        return ""
    parts = [f"{t}: {v:.4g}" for t, v in sorted(data.targets.items())]
    return (
        f"Steps to target: first validation step at which the run reaches the task's target "
        f"({'; '.join(parts)}) — by default {TARGET_FRACTION:.0%} of the way from chance to "
        f"the best cell's mean (override with --target TASK=VALUE); the median over runs "
        f"that reached it."
    )


def verdict_matrix(data: ReportData) -> tuple[Table, list[list[str]]]:
    """Claim × task: each cell the verdict (outcome) and effect [95% CI], and a last column
    "across modalities" (claims.modalities); also each cell's bare verdict, for colouring.
    Empty when the report has no findings."""
    tasks = sorted({f.task for f in data.findings})
    if not tasks:
        return ([], []), []
    by = {(f.id, f.task): f for f in data.findings}
    claims = list(dict.fromkeys((f.id, f.claim) for f in data.findings))
    rows, verdicts = [], []
    for cid, claim in claims:
        cells = [by.get((cid, t)) for t in tasks]
        rows.append(
            [f"({cid}) {claim}"]
            + [f"{c.verdict_text()} · {c.effect_text()}" if c else "–" for c in cells]
            + [across([c for c in cells if c])]
        )
        verdicts.append([""] + [c.verdict if c else "" for c in cells] + [""])
    return (["claim", *tasks, "across modalities"], rows), verdicts


def findings_table(data: ReportData) -> Table:
    head = ["claim", "task", "verdict", "effect [95% CI]", "unit", "n", "failures (95% CI)"]
    head += ["p (Holm)", "source"]
    rows = [
        [
            f"({f.id}) {f.claim}",
            f.task,
            f.verdict_text(),
            f.effect_text(),
            f.unit,
            str(f.n),
            f.failures_text() or "–",
            fmt(f.p_holm, 3) if math.isfinite(f.p_holm) else "–",
            f.source,
        ]
        for f in data.findings
    ]
    return head, rows


BUDGET_TITLE = "Budget check"


def budget_note() -> str:
    return budget.criterion()


def budget_table(data: ReportData) -> Table:
    """Has pre_ln's validation curve flattened? One row per task × width × step budget;
    empty when the report has no pre_ln run at the base cell."""
    rows = []
    for r in budget.budget_rows(data.runs):
        if r.best is None:
            best = "no LR grid"
        elif math.isclose(r.best.lr, r.base.lr):
            best = f"lr {r.best.lr:g}: the base lr"
        else:
            best = f"lr {r.best.lr:g}: {r.best.text()}"
        rows.append([r.task, fmt(r.dim), fmt(r.budget), r.metric, r.base.text(), best])
    if not rows:
        return [], []
    head = ["task", "width", "steps", "metric", f"{budget.REFERENCE} lr {budget.BASE_LR:g}"]
    return head + [f"{budget.REFERENCE} at its best lr"], rows


def lr_table(data: ReportData) -> Table:
    t = data.lr_table
    if t.empty:
        return [], []
    # the whole architecture, then the LR set and clamp each row is computed on
    keys = lr_sensitivity.key_columns(t)
    head = [{"arch": "variant"}.get(k, k) for k in keys]
    head += ["LR set", "L_0", "LR sensitivity [95% CI]", "seeds"]
    rows = [
        [fmt(getattr(r, k)) for k in keys]
        + [r.lrs, fmt(r.clamp), ci_text(r.mean, r.ci_low, r.ci_high), str(r.seeds)]
        for r in t.itertuples()
    ]
    return head, rows


def frontier_table(data: ReportData) -> Table:
    return frontier.frontier_rows(data.frontier_table)


def not_aggregated(data: ReportData) -> Table:
    bad = data.runs[~data.runs["usable"]]
    head = ["run", "status", "task", "variant", "depth", "seed", "error"]
    rows = [
        [
            str(r.run_dir),
            r.status,
            str(r.task),
            str(r.arch),
            fmt(r.depth),
            fmt(r.seed),
            str(r.error or "")[:160],
        ]
        for r in bad.itertuples()
    ]
    return head, rows


def methods(looks: int = 1) -> list[str]:
    margins = ", ".join(f"{m} ±{v:g}" for m, v in MARGINS.items())
    minimums = ", ".join(f"{m} {v:g}" for m, v in MIN_EFFECTS.items())
    probes = ", ".join(f"{m} {v:g}" for m, v in PROBE_MIN_EFFECTS.items())
    adaptive = (
        f" per look: the study added seeds in {looks} planned looks, each judged at "
        f"α/{looks} = {ALPHA / looks:.4g} (Bonferroni over the looks)"
        if looks > 1
        else ""
    )
    return [
        f"Aggregation: a cell's runs are its seeds. Only runs with status {' or '.join(USABLE)} "
        "are aggregated; running, failed and pruned runs are listed, never averaged. A "
        "diverged run whose parameters became non-finite has no test metric and counts at "
        "chance level (accuracy = majority/uniform chance, bpc = log2 of the vocabulary).",
        f"Confidence intervals: {LEVEL:.0%} Student-t interval of the mean over seeds "
        "(Welch's for unpaired groups). One value: no CI is shown and nothing is concluded.",
        "Pairing: two variants are compared on runs that share task, depth, width, lr, warmup, "
        "step budget and seed (quantities measured at initialisation: depth, width and seed). "
        f"Only complete settings count (≥ {MIN_SEEDS} paired seeds); each seed's differences "
        "are averaged over them, so n is the number of seeds, never seeds × settings. "
        "Without shared seeds the groups are compared unpaired (Welch).",
        "Tests: each part of a claim states the outcome it expects and a minimum effect that "
        f"matters (scores: {minimums}; probes: {probes}), which is also the equivalence "
        f"margin ({margins}). Each part reaches one decision from one two-sided t-interval "
        "at 1 − α: better (above 0 and the mean ≥ the minimum), worse (the mirror), "
        "equivalent (inside ± the margin) or, for non-inferiority, not worse (above − the "
        "margin); else inconclusive. Its p-value is the smallest α that reaches that "
        "decision. The parts of the study's primary claims form one Holm–Bonferroni family "
        f"at α = {ALPHA:g}{adaptive}; the other claims are exploratory (unadjusted, marked "
        "so). Values identical in every seed are one measurement, not replicates: not tested.",
        "Failures: a run failed when it diverged or its score closes less than "
        f"{FAIL_FRACTION:.0%} of the gap from chance to perfect. Scores are compared on the "
        "seeds where both arms trained; each arm's failures are shown as k/n with an exact "
        "(Clopper–Pearson) 95% interval, and claims about failing (b, e) test the counts "
        "with Fisher's exact test (b, c, d and e have such parts).",
        "Verdicts: supported when every part has its expected outcome; not supported when "
        "some part contradicts it (the outcome is shown: 'worse', or 'equivalent' where an "
        "effect was claimed, or 'better' where equivalence was); not testable when the "
        f"reference model did not learn the task (its mean closes < {LEARN_FRACTION:.0%} of "
        "the gap from chance to perfect), or when a part's quantity cannot move the claimed "
        "way (already at its ceiling, or no depth where the claimed failure occurs); "
        "otherwise inconclusive, naming the missing runs. "
        "Deep claims are judged at the deepest depth where both arms have a complete cell.",
        lr_sensitivity.DEFINITION,
        "Divergence: non-finite loss or gradient, or smoothed loss above a multiple of the "
        "initial loss (thresholds in each run's stability.json). Loss spike: a step whose loss "
        "exceeds a multiple of the running median of the previous losses.",
    ]
