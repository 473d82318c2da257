"""The study index: one CSV row per run of a sweep directory, rebuilt from summaries.

Rebuilt by scanning, never appended to, so it can't hold duplicates, and written
atomically under a lock on ``.index.lock``, so concurrent jobs and launchers (sharing the
study's filesystem) can all refresh it without one writing back an older scan over a newer
one. Every job of a multirun refreshes it when it ends.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from resnorm.outputs import SUMMARY, atomic_file

INDEX = "index.csv"
HEAD = ("run_dir", "run_key", "status", "task", "variant")
TAIL = ("seed", "lr", "warmup_steps", "steps", "wall_s", "metric", "value", "diverged_at_step")
# The model columns of summaries written before they carried the full block config
# (``summary["model"]``), read from their top-level fields.
LEGACY_MODEL_FIELDS = ("residual", "norm_position", "norm", "depth", "dim")
HEADLINE = ("test/acc", "test/bpc")  # the metric a row shows, by task kind


def model_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The run's block config: ``summary["model"]``, or the legacy top-level fields."""
    model = summary.get("model")
    if isinstance(model, dict):
        return dict(model)
    return {k: summary.get(k, "") for k in LEGACY_MODEL_FIELDS}


def index_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per summary.json under ``sweep_dir``: the HEAD, model and TAIL columns."""
    rows = []
    root = Path(sweep_dir)
    for path in sorted(root.rglob(SUMMARY)):
        try:
            s = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a summary being replaced right now; the next refresh sees it
        metric = next((m for m in HEADLINE if m in s.get("metrics", {})), "")
        row = {c: s.get(c, "") for c in HEAD}
        row.update(model_fields(s))
        row.update({c: s.get(c, "") for c in TAIL})
        row["run_dir"] = str(path.parent.relative_to(root))
        row["metric"] = metric
        row["value"] = s["metrics"][metric] if metric else ""
        row["diverged_at_step"] = s.get("stability", {}).get("diverged_at_step", "")
        rows.append(row)
    return rows


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """HEAD, the model fields, TAIL. The legacy model fields lead (as in every index so
    far), then any other field in the order first seen; all legacy ones when no rows."""
    fixed = {*HEAD, *TAIL}
    seen = dict.fromkeys(k for row in rows for k in row if k not in fixed)
    lead = [k for k in LEGACY_MODEL_FIELDS if k in seen or not rows]
    return [*HEAD, *lead, *(k for k in seen if k not in lead), *TAIL]


@contextlib.contextmanager
def _locked(sweep_dir: Path) -> Iterator[None]:
    """Exclusive lock for scan + replace; where the filesystem has no locks, none."""
    try:
        fd = os.open(sweep_dir / ".index.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def refresh_index(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Rebuild ``index.csv`` from the summaries under ``sweep_dir``; return its rows."""
    root = Path(sweep_dir)
    with _locked(root):
        rows = index_rows(root)
        # temp file, fsync, rename: a full disk leaves the old index, never half of one
        with atomic_file(root / INDEX, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns(rows), restval="")
            writer.writeheader()
            writer.writerows(rows)
    return rows


def write_index(sweep_dir: str | Path) -> Path:
    refresh_index(sweep_dir)
    return Path(sweep_dir) / INDEX
