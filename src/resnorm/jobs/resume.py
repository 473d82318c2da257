"""Decide whether a job's directory already holds its answer.

A study writes each job to a directory named after its overrides, so relaunching the
study maps every job to the same place. A job whose summary there has the same
``run_key`` and a finished status is skipped; a ``running`` one (killed) resumes from
its checkpoint; a ``failed`` one is retried only when asked; an unreadable one is set
aside and the job runs again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from resnorm.outputs import FAILED, FINISHED, SUMMARY


def previous_status(run_dir: str | Path, key: str) -> str | None:
    """Status recorded in ``run_dir`` for this run key, or None if there is none.

    Silent on an unreadable summary: a sweeper asks this of every job when it scans a
    study; the job itself says so, once, when it sets the file aside (``set_aside_corrupt``).
    """
    path = Path(run_dir) / SUMMARY
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return data.get("status") if data.get("run_key") == key else None


CORRUPT = SUMMARY + ".corrupt"


def set_aside_corrupt(run_dir: str | Path) -> dict | None:
    """The summary in ``run_dir`` as a dict; None when there is none or it is unreadable.

    An unreadable one (a disk that filled, a hand edit) tells nothing of the run, so the
    job starts again and writes a new one: the old file moves to ``summary.json.corrupt``
    first, so that nothing is lost, and one line says so.
    """
    path = Path(run_dir) / SUMMARY
    try:
        data = json.loads(path.read_text())
    except OSError:
        return None
    except ValueError as exc:
        problem = f"{type(exc).__name__}: {exc}"
    else:
        if isinstance(data, dict):
            return data
        problem = f"a JSON {type(data).__name__}, not an object"
    dest, n = path.with_name(CORRUPT), 1
    while dest.exists():  # set aside before: keep every one
        n += 1
        dest = path.with_name(f"{CORRUPT}.{n}")
    path.rename(dest)
    print(f"resnorm: {path} is unreadable ({problem}): moved to {dest.name}; the run starts "
          "again (from its last checkpoint, if any)", flush=True)  # fmt: skip
    return None


def retry_hint(config: Mapping[str, Any]) -> str:
    """The override that retries a failed run (``+`` adds the key when no study set it)."""
    has_key = (config.get("study") or {}).get("rerun_failed") is not None
    return f"{'' if has_key else '+'}study.rerun_failed=true"


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
    over its results, so they move to ``superseded/<its run key>/`` first. An unreadable
    summary moves to ``summary.json.corrupt`` (``set_aside_corrupt``). Called once per job,
    by the job, before it writes its own summary.
    """
    run_dir = Path(run_dir)
    old = set_aside_corrupt(run_dir)
    if old is None:
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
