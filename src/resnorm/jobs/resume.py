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


SUPERSEDED = "superseded"  # <run dir>/superseded/<run key>/: a run of another config
# What a run directory holds that is not the run's own result: the job's Hydra files and
# log, and the claim bookkeeping, all of which belong to whoever runs there now.
_STAYS = {".hydra", ".claim.json", ".claim.json.takeover", "claims.log", SUPERSEDED}


def set_aside_other_run(run_dir: str | Path, key: str) -> Path | None:
    """Move the files of a run of another config out of ``run_dir``; return where to.

    A study maps a job to a directory by its overrides, so when a preset's default changes
    (a step budget, say) a relaunch lands where the old config's run lives. Its summary has
    another ``run_key``: the job must neither resume from that run's checkpoint nor write
    over its results, so they move to ``superseded/<its run key>/`` first.
    """
    run_dir = Path(run_dir)
    try:
        old = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    old_key = str(old.get("run_key") or "unkeyed")
    if old_key == key:
        return None
    dest = run_dir / SUPERSEDED / old_key[:16]
    n = 1
    while dest.exists():  # the same old config set aside before: keep both
        n += 1
        dest = run_dir / SUPERSEDED / f"{old_key[:16]}.{n}"
    dest.mkdir(parents=True)
    for item in sorted(run_dir.iterdir()):
        if item.name not in _STAYS and not item.name.endswith(".log"):
            item.rename(dest / item.name)
    print(
        f"resnorm: {run_dir} held a {old.get('status', 'unknown')} run of another config "
        f"(run key {old_key[:12]}): moved to {dest.relative_to(run_dir)}/",
        flush=True,
    )
    return dest
