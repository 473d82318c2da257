"""Assemble a report: load every source, aggregate, judge the findings, draw, write files."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from resnorm.report import lr_sensitivity
from resnorm.report.findings import Finding, all_findings
from resnorm.report.load import OBJECT_COLUMNS, Loaded, dedupe, frame, load_dirs
from resnorm.report.sources import ReportError, Source

RUNS_CSV = "runs.csv"


@dataclass
class OptunaSection:
    study: str
    storage: str
    lines: list[str]  # facts: trials by state, directions, importances or why none
    figs: list = field(default_factory=list)


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
    figs: list = field(default_factory=list)
    optuna: list[OptunaSection] = field(default_factory=list)
    workspace: str | None = None  # where the W&B workspace spec went


def load_sources(sources: list[Source]) -> tuple[Loaded, list]:
    """Rows from every source in one frame, plus the Optuna studies (with their trials)."""
    parts: list[pd.DataFrame] = []
    skipped: list[str] = []
    notes: list[str] = []
    studies: list = []
    dirs = [s.value for s in sources if s.kind == "dir"]
    if dirs:
        loaded = load_dirs(dirs)
        parts.append(loaded.runs)
        skipped += loaded.skipped
        notes += loaded.notes
    for s in sources:
        if s.kind == "optuna":
            from resnorm.report.optuna_source import load_storage

            rows, found = load_storage(s.value)
            parts.append(frame(rows))
            studies += found
        elif s.kind == "wandb":
            from resnorm.report.wandb_source import load_project

            parts.append(frame(load_project(s.value)))
    parts = [p for p in parts if len(p)]
    if not parts:
        names = ", ".join(s.text for s in sources)
        raise ReportError(f"no runs found in {names}")
    runs = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    runs, dropped = dedupe(runs)
    notes += dropped
    for col in OBJECT_COLUMNS:
        if col not in runs:
            runs[col] = None
    return Loaded(runs, skipped, notes), studies


def build(
    sources: list[Source], out: Path, title: str, target_overrides: dict[str, float] | None = None
) -> ReportData:
    """Everything but the writing of files that depend on the renderers."""
    from resnorm.report.figures import build_all
    from resnorm.report.table import add_steps_to_target, summary_table, targets

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
        findings=all_findings(runs),
        lr_table=lr_sensitivity.table(runs),
    )
    data.figs = build_all(runs, out)
    if studies:
        from resnorm.report.optuna_source import sections

        data.optuna = sections(studies, out)
    return data


def write_runs_csv(runs: pd.DataFrame, out: Path) -> Path:
    """One row per run, every status, without the per-run arrays."""
    cols = [c for c in runs.columns if c not in OBJECT_COLUMNS]
    path = out / RUNS_CSV
    runs[cols].to_csv(path, index=False)
    return path


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
