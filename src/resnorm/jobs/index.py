"""The study index: one CSV row per run of a sweep directory, rebuilt from summaries.

Rebuilt by scanning, never appended to, so it can't hold duplicates, and written
atomically, so concurrent jobs can all refresh it. Every job of a multirun refreshes it
when it ends.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from resnorm.outputs import SUMMARY

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


def write_index(sweep_dir: str | Path) -> Path:
    rows = index_rows(sweep_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(rows), restval="")
    writer.writeheader()
    writer.writerows(rows)
    target = Path(sweep_dir) / INDEX
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".tmp", dir=sweep_dir)
    with os.fdopen(fd, "w") as f:
        f.write(buf.getvalue())
    os.replace(tmp, target)
    return target
