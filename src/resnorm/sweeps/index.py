"""The study index: one CSV row per run of a sweep directory, rebuilt from summaries.

Rebuilt by scanning, never appended to, so it can't hold duplicates, and written
atomically, so concurrent jobs can all refresh it.
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
COLUMNS = (
    "run_dir", "run_key", "status", "task", "variant", "residual", "norm_position", "norm",
    "depth", "dim", "seed", "lr", "warmup_steps", "steps", "wall_s", "metric", "value",
    "diverged_at_step",
)  # fmt: skip
HEADLINE = ("test/acc", "test/bpc")  # the metric a row shows, by task kind


def index_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    rows = []
    root = Path(sweep_dir)
    for path in sorted(root.rglob(SUMMARY)):
        try:
            s = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a summary being replaced right now; the next refresh sees it
        metric = next((m for m in HEADLINE if m in s.get("metrics", {})), "")
        row = {c: s.get(c, "") for c in COLUMNS}
        row["run_dir"] = str(path.parent.relative_to(root))
        row["metric"] = metric
        row["value"] = s["metrics"][metric] if metric else ""
        row["diverged_at_step"] = s.get("stability", {}).get("diverged_at_step", "")
        rows.append(row)
    return rows


def write_index(sweep_dir: str | Path) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(index_rows(sweep_dir))
    target = Path(sweep_dir) / INDEX
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".tmp", dir=sweep_dir)
    with os.fdopen(fd, "w") as f:
        f.write(buf.getvalue())
    os.replace(tmp, target)
    return target
