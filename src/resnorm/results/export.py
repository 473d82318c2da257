"""``resnorm export``: a study directory's results -> one export file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from resnorm.outputs import FAILED, FINISHED, SUMMARY
from resnorm.results.archive import RUN_FILES, SUFFIX, ExportError, RunRecord, write_archive


def run_dirs(study_dir: Path) -> list[Path]:
    """Every run directory at or below ``study_dir``: the runs ``resnorm report`` reads."""
    if (study_dir / SUMMARY).is_file():
        return [study_dir]
    # the order of report.sources.run_dirs.find_summaries: the report dedupes in it
    return [p.parent for p in sorted(study_dir.rglob(SUMMARY)) if ".hydra" not in p.parts]


def _status(run_dir: Path) -> str | None:
    try:
        data = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("status")) if isinstance(data, dict) else None


def records(study_dir: Path, left_out: list[str]) -> Iterator[RunRecord]:
    """The records of every ended run (finished or failed). A run still ``running`` (or
    killed) and an unreadable summary are left out and named in ``left_out``: an export
    holds only results, and a relaunch from it must run those again."""
    for run in run_dirs(study_dir):
        rel = run.relative_to(study_dir).as_posix()
        status = _status(run)
        if status not in (*FINISHED, FAILED):
            left_out.append(f"{rel} ({status or 'unreadable summary'})")
            continue
        files = {}
        for name in RUN_FILES:
            try:
                files[name] = (run / name).read_text()
            except FileNotFoundError:
                continue
        yield RunRecord(rel, files)


def export_study(study_dir: Path, out: Path) -> tuple[int, list[str]]:
    """Write ``study_dir``'s runs to ``out``; returns (runs written, runs left out)."""
    if not study_dir.is_dir():
        raise ExportError(f"{study_dir}: no such study directory")
    if not out.name.endswith(SUFFIX):
        raise ExportError(f"--out {out}: an export file name ends in {SUFFIX}")
    if not run_dirs(study_dir):
        raise ExportError(f"{study_dir}: no runs found (no {SUMMARY} in it or below it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    left_out: list[str] = []
    header = {"study": study_dir.resolve().name}
    n = write_archive(out, header, records(study_dir, left_out))
    return n, left_out
