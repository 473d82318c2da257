"""``resnorm resume <dir> [overrides...]``: relaunch a stopped run, or study, where it was.

A run directory holds the overrides its job was started with (``.hydra/overrides.yaml``);
relaunched with them into the same directory (``hydra.run.dir``), the run resumes from
``checkpoints/last.ckpt`` and keeps its CSV log (``resnorm.training.fit``). A study
directory holds its sweep's config (``multirun.yaml``); relaunched with the same
overrides into the same sweep directory, the study skips its finished runs and resumes
the others. This module only reads those files and builds the ``resnorm train``
arguments: it loads neither torch nor Lightning, so a refusal is immediate.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from resnorm.outputs import FINISHED, SUMMARY

OVERRIDES = Path(".hydra") / "overrides.yaml"
HYDRA = Path(".hydra") / "hydra.yaml"
MULTIRUN = "multirun.yaml"
USAGE = "usage: resnorm resume <run or study directory> [extra overrides...]"
# hydra overrides a study's relaunch sets itself (the mode and the directory)
OWN_KEYS = ("hydra.mode", "hydra.sweep.dir", "hydra.run.dir")


class ResumeRefused(ValueError):
    """The directory cannot be resumed; the message is the one line that says why."""


def _status(run_dir: Path) -> str | None:
    try:
        data = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return None  # killed before its summary was written, or unreadable: the job decides
    return data.get("status") if isinstance(data, dict) else None


def _mode(run_dir: Path) -> str | None:
    try:
        return str(OmegaConf.select(OmegaConf.load(run_dir / HYDRA), "hydra.mode"))
    except (OSError, ValueError):
        return None


def _study_of(run_dir: Path) -> Path | None:
    """The study directory (the nearest parent with ``multirun.yaml``) a job lies in."""
    return next((p for p in run_dir.parents if (p / MULTIRUN).is_file()), None)


def run_args(run_dir: Path) -> list[str]:
    """``resnorm train`` arguments that resume the single run in ``run_dir``."""
    status = _status(run_dir)
    if status in FINISHED:
        raise ResumeRefused(
            f"{run_dir} already finished ({status}; see its summary.json): nothing to resume"
        )
    study = _study_of(run_dir)
    if _mode(run_dir) == "MULTIRUN" and study is not None:
        # a study's job may train in a pack whose checkpoint lives in the study's .packs/
        raise ResumeRefused(
            f"{run_dir} is a job of the study {study}: resume the study, which resumes "
            f"this run and skips the finished ones: resnorm resume {shlex.quote(str(study))}"
        )
    overrides = OmegaConf.load(run_dir / OVERRIDES)
    return [*(str(o) for o in overrides), f"hydra.run.dir={run_dir}"]


def study_args(sweep_dir: Path) -> list[str]:
    """``resnorm train -m`` arguments that relaunch the study in ``sweep_dir``."""
    cfg = OmegaConf.load(sweep_dir / MULTIRUN)
    task = OmegaConf.select(cfg, "hydra.overrides.task", default=None) or []
    hydra = OmegaConf.select(cfg, "hydra.overrides.hydra", default=None) or []
    kept = [str(o) for o in hydra if str(o).split("=", 1)[0] not in OWN_KEYS]
    return ["-m", *(str(o) for o in task), *kept, f"hydra.sweep.dir={sweep_dir}"]


def resume_args(argv: Sequence[str]) -> list[str]:
    """The ``resnorm train`` arguments that resume ``argv[0]`` (a run or study directory),
    with any further overrides of ``argv`` appended (e.g. ``+study.rerun_failed=true``)."""
    if not argv or argv[0].startswith("-"):
        raise ResumeRefused(USAGE)
    target, extra = Path(argv[0]).resolve(), list(argv[1:])
    if not target.is_dir():
        raise ResumeRefused(f"{argv[0]} is not a directory")
    if (target / MULTIRUN).is_file():
        return [*study_args(target), *extra]
    if (target / OVERRIDES).is_file():
        return [*run_args(target), *extra]
    raise ResumeRefused(
        f"{target} is not a run directory (no {OVERRIDES}) nor a study directory "
        f"(no {MULTIRUN}); the first line of `resnorm train` names a run's directory"
    )
