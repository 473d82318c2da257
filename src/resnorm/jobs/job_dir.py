"""What a job leaves behind when its config is refused: nothing.

Hydra makes a job's run directory (its ``.hydra/`` files and log) before the job runs;
a job whose config is refused removes what Hydra made for it, and only that.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")  # what Hydra writes in .hydra/


def close_job_logs(run_dir: Path) -> set[str]:
    """Close and detach the log files Hydra opened in ``run_dir``; return their names."""
    root, names = logging.getLogger(), set()
    for handler in list(root.handlers):
        if (path := Path(getattr(handler, "baseFilename", "/"))).parent == run_dir:
            handler.close()
            root.removeHandler(handler)
            names.add(path.name)
    return names


def remove_if_only_ours(run_dir: Path, hc: Any) -> bool:
    """Remove ``run_dir`` when it holds nothing but this job's Hydra files and log (so no
    earlier run's results); True when it is gone. File by file, then ``rmdir``: anything
    written there meanwhile (by another launcher of a study) keeps the directory."""
    files = [run_dir / name for name in close_job_logs(run_dir) | {f"{hc.job.name}.log"}]
    if hc.output_subdir:
        files += [run_dir / str(hc.output_subdir) / name for name in HYDRA_FILES]
    dirs = sorted({f.parent for f in files}, key=lambda d: len(d.parts), reverse=True)
    if any(p not in {*files, *dirs} for p in run_dir.rglob("*")):
        return False
    try:
        for f in files:
            f.unlink(missing_ok=True)
        for d in dirs:  # deepest first
            d.rmdir()
    except OSError:
        return False
    return True


def remove_empty_parents(run_dir: Path) -> None:
    """The dated folders above a removed run directory, once empty, up to (not including)
    the top folder under the working directory (``outputs/`` stays); never outside it."""
    cwd = Path.cwd().resolve()
    for parent in run_dir.resolve().parents:
        if parent == cwd or parent.parent == cwd or cwd not in parent.parents:
            return
        try:
            parent.rmdir()  # fails, and so stops, on the first folder holding anything
        except OSError:
            return
