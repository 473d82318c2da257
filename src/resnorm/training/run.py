"""Training jobs: validate, train, evaluate, and write the outputs contract per run.

A job trains a pack of k members in one Lightning fit (``run_pack``; a single run is a
pack of one, ``run_job``). Every member has its own run directory, and its
``summary.json`` says ``running`` from the job's first second and is rewritten
(atomically) as completed / diverged / failed / pruned only when that is what happened.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from resnorm.data.loaders import TensorLoader
from resnorm.jobs.packing import check_compatible
from resnorm.jobs.resume import set_aside_other_run
from resnorm.outputs import FAILED, RUNNING, SUMMARY, SUMMARY_SCHEMA, run_key, write_json_atomic
from resnorm.training.builders import block_config
from resnorm.training.csv_log import merge_after_resume
from resnorm.training.fit import fit_pack
from resnorm.training.loggers import finish_trackers, tracker_ids
from resnorm.training.provenance import device_name, versions
from resnorm.training.validate import check_config
from resnorm.variants import variant_overrides

log = logging.getLogger("resnorm")


def quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*is not a `DataLoader`.*")
    # torch deprecates LeafSpec checks that Lightning 2.6 still makes on every fit
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # an epoch of a tiny split is shorter than log_every; steps, not epochs, are logged
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    # where SLURM is installed but the run was not started by srun (a local run, or a
    # submitit job that needs no srun): nothing to do about it
    warnings.filterwarnings("ignore", message=".*The `srun` command is available.*")


@functools.cache  # once per process, not once per member of a pack
def _log_wait_policy(policy: str, busy_cores: Any) -> None:
    if policy == "PASSIVE":  # resnorm made OpenMP threads sleep: the log says why
        log.info("OMP_WAIT_POLICY=PASSIVE: other processes kept %s cores busy at start-up",
                 busy_cores)  # fmt: skip


def base_summary(cfg: DictConfig, container: dict[str, Any]) -> dict[str, Any]:
    from resnorm.omp import recorded_wait_policy

    model = asdict(block_config(cfg.model))
    omp = recorded_wait_policy()  # chosen by the CLI before torch loaded (resnorm.omp)
    _log_wait_policy(omp["policy"], omp.get("busy_cores"))
    return {
        "schema": SUMMARY_SCHEMA,
        "run_key": run_key(container),
        "status": RUNNING,
        "task": cfg.task.name,
        "variant": cfg.model.variant,
        "variant_overrides": variant_overrides(container["model"], cfg.model.variant),
        **{k: model[k] for k in ("residual", "norm_position", "norm", "depth", "dim", "heads")},
        "seed": cfg.seed,
        "lr": cfg.optim.lr,
        "warmup_steps": cfg.optim.warmup_steps,
        "metrics": {},
        "stability": {},
        "steps": 0,
        "wall_s": 0.0,
        "params": None,
        "versions": versions(),
        "device": device_name(cfg.trainer.accelerator),
        "omp_wait_policy": omp,
        "model": model,  # every BlockConfig field: the key list readers derive theirs from
        "config": container,
    }


def _record(summary: dict[str, Any], run_dir: str, *, ending: bool = False) -> None:
    """Only rank 0 of a DDP job writes the run's files.

    ``ending``: the run is ending on an error already. A summary that cannot be written
    then (the full disk that failed the run) is one line on stderr, and the run's own
    error is the one that is raised.
    """
    if rank_zero_only.rank != 0:
        return
    path = Path(run_dir) / SUMMARY
    try:
        write_json_atomic(path, summary)
    except OSError as exc:
        if not ending:
            raise
        print(f"resnorm: could not write {path} (status {summary['status']}): "
              f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)  # fmt: skip


def run_pack(
    cfgs: Sequence[DictConfig],
    run_dirs: Sequence[str | os.PathLike[str]],
    *,
    checked: bool = False,
    pack_id: str | None = None,
    pack_dir: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Train the members (one config and run directory each) as one pack; return their
    summaries in order.

    The members must differ only in what leaves the parameter shapes alone (seed, optimizer
    settings, dropout, thresholds: ``resnorm.jobs.packing``). The pack's own checkpoint
    lives in ``pack_dir`` (by default the run directory of a pack of one, else
    ``<parent of the first run dir>/.packs/<pack_id>``), so a killed pack resumes all its
    unfinished members from it.
    """
    t0 = time.perf_counter()
    if len(cfgs) != len(run_dirs) or not cfgs:
        raise ValueError("a pack needs one run directory per member, and at least one member")
    run_dirs = [str(d) for d in run_dirs]
    containers = [OmegaConf.to_container(c, resolve=True) for c in cfgs]
    # `resnorm train` checks in app.py, before Lightning is imported, and says so with
    # checked=True; any other caller gets the checks here, before anything is written.
    if not checked:
        for cfg in cfgs:
            check_config(cfg)
    check_compatible(containers)
    k = len(cfgs)
    if pack_dir is None:
        pack_id = pack_id or (run_key(containers[0])[:12] if k > 1 else None)
        pack_dir = run_dirs[0] if k == 1 else Path(run_dirs[0]).parent / ".packs" / pack_id
    summaries = [base_summary(c, cont) for c, cont in zip(cfgs, containers, strict=True)]
    for i, (summary, run_dir) in enumerate(zip(summaries, run_dirs, strict=True)):
        if k > 1:
            summary["pack"] = {"id": pack_id, "index": i, "size": k}
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        if rank_zero_only.rank == 0:  # a run of another config: neither resumed nor lost
            set_aside_other_run(run_dir, summary["run_key"])
        _record(summary, run_dir)
    quiet_lightning()
    if cfgs[0].trainer.num_threads:
        torch.set_num_threads(cfgs[0].trainer.num_threads)
    loggers: list[list[Any]] = []
    try:
        fit_pack(cfgs, run_dirs, str(pack_dir), summaries, loggers)
    except BaseException as exc:
        for summary, run_dir, member_loggers in zip(summaries, run_dirs, _pad(loggers, k),
                                                    strict=True):  # fmt: skip
            # SIGTERM (scancel, preemption) and Ctrl-C arrive as SystemExit and
            # KeyboardInterrupt: the run was stopped, not broken, so it stays "running"
            # and a relaunch resumes it from its checkpoint
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                summary["stopped"] = type(exc).__name__
            else:
                summary["status"] = FAILED
                summary["error"] = f"{type(exc).__name__}: {exc}"
            summary["wall_s"] = time.perf_counter() - t0
            summary.update(tracker_ids(member_loggers))
            _record(summary, run_dir, ending=True)
            finish_trackers(member_loggers, summary)
        raise
    finally:
        TensorLoader.keep_on(None)
        if rank_zero_only.rank == 0:
            for run_dir in run_dirs:
                merge_after_resume(run_dir)
    for summary, run_dir, member_loggers in zip(summaries, run_dirs, loggers, strict=True):
        summary["wall_s"] = time.perf_counter() - t0
        summary.update(tracker_ids(member_loggers))  # wandb_run_id
        _record(summary, run_dir)
        finish_trackers(member_loggers, summary)
    return summaries


def _pad(loggers: list[list[Any]], k: int) -> list[list[Any]]:
    return loggers + [[] for _ in range(k - len(loggers))]


def run_job(
    cfg: DictConfig, run_dir: str | os.PathLike[str], *, checked: bool = False
) -> dict[str, Any]:
    """Train and evaluate one configuration in ``run_dir``: a pack of one."""
    return run_pack([cfg], [run_dir], checked=checked)[0]
