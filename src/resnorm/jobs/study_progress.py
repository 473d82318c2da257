"""How far a multirun has got: the status that follows each finished job's line.

The sweeper writes ``<sweep dir>/.launchers/<host>-<pid>.json`` (the run directories of
its jobs, when it started and how many were finished then) and points its jobs at it with
``RESNORM_STUDY_PROGRESS``; a job that ends reads it with the freshly rebuilt index and
prints ``[12/36 done: 1 failed, 2 diverged; ETA 3m10s]``. Runs finished by other
launchers of the same study count too, so the ETA is the study's, not this launcher's.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from resnorm.outputs import DIVERGED, FAILED, FINISHED, write_json_atomic

ENV = "RESNORM_STUDY_PROGRESS"
LAUNCHERS = ".launchers"
ENDED = (*FINISHED, FAILED)


def _relative(run_dirs: Iterable[str | os.PathLike[str]], root: Path) -> list[str]:
    out = []
    for d in run_dirs:
        p = Path(d).resolve()
        out.append(str(p.relative_to(root)) if p.is_relative_to(root) else str(p))
    return out


def counts(rows: Sequence[dict[str, Any]], run_dirs: Sequence[str]) -> dict[str, int]:
    """Ended, failed and diverged runs among ``run_dirs`` (index rows' relative paths)."""
    wanted = set(run_dirs)
    status = [r.get("status") for r in rows if r.get("run_dir") in wanted]
    return {
        "done": sum(s in ENDED for s in status),
        "failed": status.count(FAILED),
        "diverged": status.count(DIVERGED),
    }


def start(sweep_dir: str | os.PathLike[str], run_dirs: Sequence[str], rows: list[dict]) -> Path:
    """Record this launcher's jobs and set ``RESNORM_STUDY_PROGRESS`` for them."""
    root = Path(sweep_dir).resolve()
    rel = _relative(run_dirs, root)
    path = root / LAUNCHERS / f"{socket.gethostname()}-{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"run_dirs": rel, "started": time.time(), "done_at_start": counts(rows, rel)["done"]}
    write_json_atomic(path, data)
    os.environ[ENV] = str(path)
    return path


def stop(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)
        if os.environ.get(ENV) == str(path):
            del os.environ[ENV]


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def status(rows: list[dict[str, Any]], now: float | None = None) -> str:
    """``[done/total ...; ETA ...]`` for the launcher the environment names; "" if none."""
    path = os.environ.get(ENV)
    if not path:
        return ""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return ""
    run_dirs = data["run_dirs"]
    c = counts(rows, run_dirs)
    total, done = len(run_dirs), c["done"]
    rate_n = done - data["done_at_start"]
    elapsed = (now or time.time()) - data["started"]
    if done >= total:
        eta = "ETA 0s"
    elif rate_n > 0:
        eta = f"ETA {_duration(elapsed / rate_n * (total - done))}"
    else:
        eta = "ETA ?"
    return f"[{done}/{total} done: {c['failed']} failed, {c['diverged']} diverged; {eta}]"
