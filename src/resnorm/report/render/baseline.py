"""The "Before/after" section (``resnorm report NEW --baseline OLD``): the words and tables,
written by markdown.py and html.py with their own table functions, so both say the same."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import pandas as pd

from resnorm.report.analysis.baseline import CELL, LOSS, Cell, Comparison
from resnorm.report.analysis.stats import LEVEL, Estimate
from resnorm.report.build import ReportData
from resnorm.report.render.content import Table, ci_text, fmt
from resnorm.report.sources.rows import USABLE

TITLE = "Before/after"
MAX_ROWS = 50  # longer run lists are cut, with the count of what was left out
SHOWN = ("task", "arch", "depth")  # cell columns always shown; the others when they vary
HEADER = {"arch": "variant", "warmup_steps": "warmup"}


def intro(cmp: Comparison) -> list[str]:
    """The paragraphs above the tables: what was matched and how it is judged."""
    out = [
        "This report's runs (NEW) against the baseline "
        + ", ".join(cmp.baseline)
        + " (OLD), matched by run key: the hash of a run's resolved config without the "
        "run-only keys, so a key on both sides is the same configuration under two code "
        f"versions. Only finished pairs ({', '.join(USABLE)} on both sides) are compared; "
        "Δ = NEW − OLD. Per cell (the run key without the seed): the mean Δ over seeds with "
        f"its paired {LEVEL:.0%} t-interval (n − 1 df); 'identical' when every Δ is exactly "
        "0; flagged when the interval excludes 0. A run is identical when its status, steps "
        "and every metric its summary records are the same floats. The rest of the report "
        "is NEW alone.",
        cmp.summary_line() + ".",
    ]
    if cmp.unkeyed:
        out.append(f"{cmp.unkeyed} runs have no run key (older sources) and were not matched.")
    out += [f"Baseline: skipped {s}" for s in cmp.skipped]
    out += [f"Baseline: {n}" for n in cmp.notes]
    return out


def delta_text(est: Estimate, zero: bool) -> str:
    """'identical', the mean Δ [CI], or the mean of one seed, which has no interval."""
    if zero:
        return "identical"
    if est.n == 1:
        return f"{fmt(est.mean)} (1 seed, no interval)"
    return ci_text(est.mean, est.low, est.high)


def flag(c: Cell) -> str:
    parts = []
    if moved := c.beyond_noise():
        parts.append(f"changed beyond the noise ({', '.join(moved)})")
    if c.status_changed:
        parts.append(f"status changed ({c.status_changed} of {c.pairs} runs)")
    if parts:
        return "; ".join(parts)
    if c.identical == c.pairs:
        return "identical"
    if c.seeds < 2:
        return "changed, no interval (1 seed)"
    return "within the noise"


def _shown(cmp: Comparison) -> list[str]:
    keys = [k for k in CELL if k in SHOWN]
    for k in CELL:
        if k not in SHOWN and len({str(c.key.get(k)) for c in cmp.cells}) > 1:
            keys.append(k)
    return keys


def cell_table(cmp: Comparison) -> Table:
    """One row per cell: pairs, identical pairs, mean Δ [CI] of the metric and test loss."""
    if not cmp.cells:
        return [], []
    keys = _shown(cmp)
    head = [HEADER.get(k, k) for k in keys] + [
        "metric",
        "pairs",
        "seeds",
        "identical",
        f"mean Δ metric [{LEVEL:.0%} CI]",
        f"mean Δ {LOSS} [{LEVEL:.0%} CI]",
        "flag",
    ]
    rows = [
        [fmt(c.key.get(k)) for k in keys]
        + [
            c.metric,
            str(c.pairs),
            str(c.seeds),
            f"{c.identical}/{c.pairs}",
            delta_text(c.value, c.value_zero),
            delta_text(c.loss, c.loss_zero),
            flag(c),
        ]
        for c in cmp.cells
    ]
    return head, rows


def _cut(rows: list[list[str]], width: int) -> list[list[str]]:
    if len(rows) <= MAX_ROWS:
        return rows
    return rows[:MAX_ROWS] + [[f"… and {len(rows) - MAX_ROWS} more"] + [""] * (width - 1)]


def run_table(cmp: Comparison) -> Table:
    """Every matched run that is not identical: its Δs, statuses, and why it is listed."""
    head = ["run (NEW)", "task", "variant", "seed", "status OLD → NEW", "metric", "Δ metric"]
    head += [f"Δ {LOSS}", "note"]
    rows = []
    for r in cmp.pairs[~cmp.pairs["identical"]].itertuples():
        note = "status changed" if r.status_changed else "changed"
        rows.append(_run_row(r, r.metric, fmt(r.d_value), fmt(r.d_loss), note))
    for r in cmp.not_compared.itertuples():
        note = "not compared: unfinished" + ("; status changed" * (r.status != r.status_old))
        rows.append(_run_row(r, r.metric, "–", "–", note))
    return (head, _cut(rows, len(head))) if rows else ([], [])


def _run_row(r, metric: str, d_value: str, d_loss: str, note: str) -> list[str]:
    head = [str(r.run_dir), str(r.task), str(r.arch), fmt(r.seed)]
    return head + [f"{r.status_old} → {r.status}", str(metric), d_value, d_loss, note]


def side_table(runs: pd.DataFrame) -> Table:
    """Runs on one side only: where they are and what state they are in."""
    if runs.empty:
        return [], []
    head = ["run", "status", "task", "variant", "depth", "seed"]
    rows = [[str(r.run_dir), str(r.status), str(r.task), str(r.arch), fmt(r.depth), fmt(r.seed)]
            for r in runs.itertuples()]  # fmt: skip
    return head, _cut(rows, len(head))


def blocks(cmp: Comparison) -> list[str | tuple[str, Table]]:
    """The section below its title, in order: paragraphs, and (caption, table) pairs."""
    out: list[str | tuple[str, Table]] = [*intro(cmp)]
    out.append(("Per cell", cell_table(cmp)))
    if (runs := run_table(cmp))[0]:
        out.append(("Runs that are not identical", runs))
    for name, side in (("NEW", cmp.only_new), ("OLD", cmp.only_old)):
        if len(side):
            out.append((f"Only in {name} ({len(side)} runs)", side_table(side)))
    return out


def markdown(
    data: ReportData, table: Callable[[Table], list[str]], text: Callable[[str], str]
) -> list[str]:
    """The section as report.md lines (nothing without a baseline)."""
    if data.baseline is None:
        return []
    lines = [f"## {TITLE}", ""]
    for b in blocks(data.baseline):
        if isinstance(b, str):
            lines += [text(b), ""]
        else:
            lines += [f"**{text(b[0])}.**", ""] + table(b[1])
    return lines


def html(data: ReportData, table: Callable[[Table], str]) -> list[str]:
    """The section as index.html parts (nothing without a baseline)."""
    if data.baseline is None:
        return []
    parts = [f"<h2 id='baseline'>{escape(TITLE)}</h2>"]
    for b in blocks(data.baseline):
        if isinstance(b, str):
            parts.append(f"<p>{escape(b)}</p>")
        else:
            parts += [f"<p><b>{escape(b[0])}.</b></p>", table(b[1])]
    return parts
