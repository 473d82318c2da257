"""Every source of a report -> one runs table (duplicates of a run counted once), plus the
Optuna studies the table's trials came from."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnorm.report.sources.classify import ReportError, Source
from resnorm.report.sources.export_file import load_export
from resnorm.report.sources.optuna_storage import load_storage
from resnorm.report.sources.rows import OBJECT_COLUMNS, Loaded, dedupe, frame
from resnorm.report.sources.run_dirs import load_dirs
from resnorm.report.sources.wandb_project import load_project


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
    exported: list[dict] = []
    for s in sources:
        if s.kind == "export":
            load_export(Path(s.value), exported, skipped)
    if exported:
        parts.append(frame(exported))
    for s in sources:
        if s.kind == "optuna":
            rows, found = load_storage(s.value)
            parts.append(frame(rows))
            studies += found
        elif s.kind == "wandb":
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
