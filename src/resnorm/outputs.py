"""The outputs contract: the files every run directory holds and how they are written.

Pure Python (no torch) so that ``resnorm report`` can read runs without the training stack.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

SUMMARY_SCHEMA = 1
SUMMARY = "summary.json"
STABILITY = "stability.json"
METRICS_CSV = "csv/metrics.csv"

# A run's status in summary.json: running until it ends, then what happened.
RUNNING, COMPLETED, DIVERGED, FAILED, PRUNED = (
    "running",
    "completed",
    "diverged",
    "failed",
    "pruned",
)
FINISHED = (COMPLETED, DIVERGED, PRUNED)

# Config paths that change how a run is executed or recorded, not what it computes.
# (Probes are proven not to change training: tests/test_stability.py.)
RUN_ONLY_KEYS = (
    "logger", "paths", "hydra", "hparams_search", "study", "optuna", "pack", "pack_manifest",
    "claims", "trainer.num_threads", "trainer.log_every", "trainer.ckpt_every", "trainer.resume",
    "trainer.ckpt_minutes", "trainer.progress",
    "stability.probes", "stability.probe_every", "stability.probe_batch_size",
)  # fmt: skip


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename in ``path`` durable; a filesystem that cannot sync a folder is let be."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike[str], mode: str = "w", newline: str | None = None
) -> Iterator[IO[Any]]:
    """A file to write ``path`` through: a temporary file in the same folder, flushed,
    fsynced and renamed over ``path`` when the block ends, removed if it raises.

    A reader sees the old file or the new one, never half of one, and a write that fails
    (a full disk) frees the space it took.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON through ``atomic_file``: the old file or the new, never half."""
    with atomic_file(path) as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str, allow_nan=True)
        f.write("\n")


def run_key(config: dict[str, Any]) -> str:
    """Hash of the resolved config without the run-only keys: same key, same computation."""
    cfg = _drop(config, RUN_ONLY_KEYS)
    blob = json.dumps(cfg, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(run_dir) / SUMMARY
    with open(path) as f:
        return check_schema(json.load(f), str(path))


def check_schema(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` when its summary schema is one this code reads; else a ValueError naming
    ``where`` (a summary written by a newer resnorm)."""
    schema = data.get("schema")
    if not isinstance(schema, int) or schema > SUMMARY_SCHEMA:
        raise ValueError(
            f"{where}: summary schema {schema!r} is newer than this resnorm understands "
            f"(<= {SUMMARY_SCHEMA}); upgrade resnorm"
        )
    return data


def _drop(config: dict[str, Any], paths: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in config.items():
        path = f"{prefix}{k}"
        if path in paths:
            continue
        out[k] = _drop(v, paths, f"{path}.") if isinstance(v, dict) else v
    return out
