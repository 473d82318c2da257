"""Keep the CSV metrics log whole across a resume.

Lightning's CSV logger deletes an existing ``metrics.csv`` when it starts. On resume we
move the old log aside first, and when the run ends merge it back: a row re-logged after
the resume (same step, same columns) replaces its pre-kill twin, so the log ends with
every step once and nothing from before the kill is lost.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from resnorm.outputs import METRICS_CSV, atomic_file

# Outside csv/: Lightning's CSV logger warns that "previous log files will be deleted" when
# its folder is not empty, which a stash there made it do on every resume (falsely: the
# stash is what keeps them).
STASH = "metrics.before-resume.csv"
LEGACY_STASH = "csv/metrics.before-resume.csv"  # where earlier versions kept it


def _read(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def _key(row: dict[str, str]) -> tuple:
    return row.get("step", ""), frozenset(k for k, v in row.items() if v not in ("", None))


def merge_rows(old: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """Union by (step, filled columns), new rows winning; ordered by step, stably."""
    merged = {_key(r): r for r in old}
    merged.update({_key(r): r for r in new})

    def step(row: dict[str, str]) -> float:
        try:
            return float(row.get("step") or 0)
        except ValueError:
            return 0.0

    return sorted(merged.values(), key=step)


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the log through a temporary file: a full disk leaves the old file, never half."""
    fields = sorted({k for r in rows for k in r})
    with atomic_file(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def stash_for_resume(run_dir: str | Path) -> None:
    """Before a resumed run's logger starts: fold the current log into the stash."""
    log, stash = Path(run_dir) / METRICS_CSV, Path(run_dir) / STASH
    legacy = Path(run_dir) / LEGACY_STASH
    if legacy.exists():  # a stash an earlier version left: fold it in first
        _write(stash, merge_rows(_read(stash), _read(legacy)))
        legacy.unlink()
    if not log.exists():
        return
    _write(stash, merge_rows(_read(stash), _read(log)))
    log.unlink()


def merge_after_resume(run_dir: str | Path) -> None:
    """When the run ends (any status): put the stashed rows back into the log.

    A merge that cannot be written (a full disk) is one line on stderr, not an error that
    would hide the run's own: the stash stays, and the next resume folds it in again.
    """
    log, stash = Path(run_dir) / METRICS_CSV, Path(run_dir) / STASH
    if not stash.exists():
        return
    try:
        _write(log, merge_rows(_read(stash), _read(log)))
    except OSError as exc:
        print(f"resnorm: could not merge {stash} into {log} (kept for the next resume): "
              f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)  # fmt: skip
        return
    stash.unlink()
