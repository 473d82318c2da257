"""Decide whether a job's directory already holds its answer.

A study writes each job to a directory named after its overrides, so relaunching the
study maps every job to the same place. A job whose summary there has the same
``run_key`` and a finished status is skipped; a ``running`` one (killed) resumes from
its checkpoint; a ``failed`` one is retried only when asked.
"""

from __future__ import annotations

import json
from pathlib import Path

from resnorm.outputs import FAILED, FINISHED, SUMMARY


def previous_status(run_dir: str | Path, key: str) -> str | None:
    """Status recorded in ``run_dir`` for this run key, or None if there is none."""
    path = Path(run_dir) / SUMMARY
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get("status") if data.get("run_key") == key else None


def should_skip(status: str | None, rerun_failed: bool) -> bool:
    if status in FINISHED:
        return True
    return status == FAILED and not rerun_failed
