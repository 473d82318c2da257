"""The line that ends a multirun: where the study is, how its runs ended, how to report it.

Printed once by the sweeper that launched the jobs, after all of them (and the runs other
launchers held) have ended. The counts are the study's, read from its freshly rebuilt
index, so runs that other launchers or earlier launches finished count too.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resnorm.jobs.index import refresh_index
from resnorm.outputs import COMPLETED, DIVERGED, FAILED, FINISHED, PRUNED, RUNNING

ORDER = (COMPLETED, DIVERGED, PRUNED, FAILED, RUNNING)  # then any other status, by name


def study_line(sweep_dir: str | Path, rows: Sequence[dict[str, Any]]) -> str:
    """``resnorm: study <dir>: 12 runs (10 completed, 1 diverged, 1 failed); report: ...``"""
    counts = Counter(str(r.get("status") or "unknown") for r in rows)
    names = [s for s in ORDER if counts[s]] + sorted(set(counts) - set(ORDER))
    parts = ", ".join(f"{counts[s]} {s}" for s in names)
    n = len(rows)
    head = f"resnorm: study {sweep_dir}: {n} run{'' if n == 1 else 's'}"
    head += f" ({parts})" if parts else ""
    if not any(counts[s] for s in FINISHED):
        return f"{head}; nothing finished to report"
    where = shlex.quote(str(sweep_dir))
    out = shlex.quote(str(Path(sweep_dir) / "report"))
    return f"{head}; report: resnorm report {where} --out {out}"


def announce_end(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Rebuild the study's index and print its end line (one print); return the rows."""
    rows = refresh_index(sweep_dir)
    print(study_line(sweep_dir, rows), flush=True)
    return rows
