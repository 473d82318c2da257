"""Export files (``resnorm export``) as a report source: each run record is read with the
same code as its run directory would be (run_dirs.add_run_files), so a report from the
export gives the same verdicts and numbers as one from the directories."""

from __future__ import annotations

import io
import json
from pathlib import Path

from resnorm.outputs import METRICS_CSV, STABILITY, SUMMARY, check_schema
from resnorm.report.sources.classify import ReportError
from resnorm.report.sources.rows import summary_row
from resnorm.report.sources.run_dirs import add_run_files, parse_stability
from resnorm.results.archive import ExportError, read_records


def load_export(path: Path, rows: list[dict], skipped: list[str]) -> None:
    """Append the rows of every run in the export at ``path``; unreadable summaries are
    skipped and named, as for a run directory. A run's ``run_dir`` is 'FILE:PATH'."""
    try:
        for record in read_records(path):
            where = f"{path}:{record.path}"
            try:
                s = json.loads(record.files[SUMMARY])
            except ValueError as exc:
                skipped.append(f"{where}/{SUMMARY}: not valid JSON ({exc})")
                continue
            if not isinstance(s, dict) or "status" not in s:
                skipped.append(f"{where}/{SUMMARY}: not a resnorm summary (no 'status')")
                continue
            try:
                check_schema(s, where)
            except ValueError as exc:
                raise ReportError(str(exc)) from exc
            csv = record.files.get(METRICS_CSV)
            row = summary_row(s, where, "export")
            rows.append(
                add_run_files(
                    row,
                    parse_stability(record.files.get(STABILITY)),
                    io.StringIO(csv) if csv is not None else None,
                )
            )
    except ExportError as exc:
        raise ReportError(str(exc)) from exc
