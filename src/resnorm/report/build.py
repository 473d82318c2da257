"""Assemble a report: load every source, aggregate, judge the findings, draw; the result
(``ReportData``) is what the renderers write."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from resnorm.report.analysis import frontier, lr_sensitivity
from resnorm.report.analysis.baseline import Comparison, compare
from resnorm.report.analysis.table import add_steps_to_target, summary_table, targets
from resnorm.report.claims.adaptive import declared_looks
from resnorm.report.claims.catalog import all_findings
from resnorm.report.claims.rules import Finding
from resnorm.report.figures.base import Fig
from resnorm.report.figures.catalog import build_all
from resnorm.report.figures.optuna_study import OptunaSection, sections
from resnorm.report.sources.classify import Source
from resnorm.report.sources.collect import load_sources
from resnorm.report.sources.rows import OBJECT_COLUMNS

RUNS_CSV = "runs.csv"


@dataclass
class ReportData:
    title: str
    sources: list[str]
    generated: str
    runs: pd.DataFrame
    skipped: list[str]
    notes: list[str]
    table: pd.DataFrame
    targets: dict[str, float]
    findings: list[Finding]
    lr_table: pd.DataFrame
    frontier_table: pd.DataFrame
    figs: list[Fig] = field(default_factory=list)
    optuna: list[OptunaSection] = field(default_factory=list)
    workspace: str | None = None  # where the W&B workspace spec went
    baseline: Comparison | None = None  # NEW against --baseline OLD, never pooled into NEW
    looks: int = 1  # planned looks of an adaptive study: each judged at α / looks


def build(
    sources: list[Source],
    out: Path,
    title: str,
    target_overrides: dict[str, float] | None = None,
    baseline: list[Source] | None = None,
    primary: list[str] | None = None,
) -> ReportData:
    """Everything but the writing of files that depend on the renderers; ``baseline``: the
    sources of a before/after comparison, read as NEW's are; ``primary``: the claims in the
    Holm family (default: those the runs' study presets declare, else every claim)."""
    loaded, studies = load_sources(sources)
    runs = loaded.runs
    tgt = targets(runs, target_overrides)
    runs = add_steps_to_target(runs, tgt)
    out.mkdir(parents=True, exist_ok=True)
    data = ReportData(
        title=title,
        sources=[s.text for s in sources],
        generated=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        runs=runs,
        skipped=loaded.skipped,
        notes=loaded.notes,
        table=summary_table(runs),
        targets=tgt,
        findings=all_findings(runs, primary),
        lr_table=lr_sensitivity.table(runs),
        frontier_table=frontier.frontier_table(runs),
        looks=declared_looks(runs),
    )
    if baseline:
        old, _ = load_sources(baseline)
        data.baseline = compare(runs, old.runs, [s.text for s in baseline], old.skipped, old.notes)
    data.figs = build_all(runs, out)
    if studies:
        data.optuna = sections(studies, out)
    return data


def write_runs_csv(runs: pd.DataFrame, out: Path) -> Path:
    """One row per run, every status, without the per-run arrays."""
    cols = [c for c in runs.columns if c not in OBJECT_COLUMNS]
    path = out / RUNS_CSV
    runs[cols].to_csv(path, index=False)
    return path
