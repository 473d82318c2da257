"""One training job: validate, train, evaluate, and write the outputs contract.

A run's ``summary.json`` says ``running`` from its first second, and is rewritten
(atomically) as completed / diverged / failed only when that is what happened.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from resnorm.data.loaders import TensorLoader
from resnorm.outputs import SUMMARY, SUMMARY_SCHEMA, run_key, write_json_atomic
from resnorm.stability import params_finite
from resnorm.training.builders import (
    block_config,
    build_datamodule,
    build_model,
    data_dependent_init,
    flat_config,
)
from resnorm.training.callbacks import StepTimer, extra_callbacks
from resnorm.training.csv_log import merge_after_resume, stash_for_resume
from resnorm.training.loggers import build_loggers, finish_wandb
from resnorm.training.module import TaskModule
from resnorm.training.optim import OPTIM_KEYS
from resnorm.training.provenance import device_name, versions
from resnorm.training.stability_callback import build_stability_callback
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


def base_summary(cfg: DictConfig, container: dict[str, Any]) -> dict[str, Any]:
    model = asdict(block_config(cfg.model))
    return {
        "schema": SUMMARY_SCHEMA,
        "run_key": run_key(container),
        "status": "running",
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
        "model": model,  # every BlockConfig field: the key list readers derive theirs from
        "config": container,
    }


def build_trainer(cfg: DictConfig, run_dir: str, loggers: list, callbacks: list) -> pl.Trainer:
    t = cfg.trainer
    return pl.Trainer(
        accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, precision=t.precision,
        max_steps=t.max_steps, max_epochs=-1, val_check_interval=t.val_every,
        check_val_every_n_epoch=None, log_every_n_steps=t.log_every,
        deterministic=t.deterministic,
        logger=loggers, callbacks=callbacks, default_root_dir=run_dir,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip


def _record(summary: dict[str, Any], path: Path) -> None:
    """Only rank 0 of a DDP job writes the run's files."""
    if rank_zero_only.rank == 0:
        write_json_atomic(path, summary)


def _train(cfg: DictConfig, run_dir: str, summary: dict[str, Any]) -> None:
    """Build, fit and test; fill ``summary`` in place."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.trainer.accelerator in ("gpu", "cuda"):
        TensorLoader.keep_on(torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))))
    dm = build_datamodule(cfg)
    dm.setup("fit")
    model = build_model(cfg.model, dm.spec)
    data_dependent_init(model, dm)  # Admin's profiling pass; no batch drawn for other variants
    summary["params"] = sum(p.numel() for p in model.parameters())
    summary["chance"] = dm.spec.chance
    if cfg.model.get("compile"):
        model.compile()  # in place: parameter names and checkpoints stay as they are
    optim = {k: cfg.optim[k] for k in OPTIM_KEYS}
    module = TaskModule(model, dm.spec, optim, cfg.trainer.max_steps, cfg.optim.grad_clip)
    last = Path(run_dir) / "checkpoints" / "last.ckpt"
    resume = str(last) if cfg.trainer.resume and last.is_file() else None
    if resume and rank_zero_only.rank == 0:
        stash_for_resume(run_dir)
        summary["resumed"] = summary.get("resumed", 0) + 1
    tags = [f"{k}={summary[k]}" for k in ("variant", "residual", "norm_position", "norm")]
    tags.append(f"depth={summary['depth']}")
    loggers = build_loggers(cfg, run_dir, flat_config(cfg), tags)
    ckpt = pl.callbacks.ModelCheckpoint(
        dirpath=os.path.join(run_dir, "checkpoints"), save_last=True, save_top_k=0,
        every_n_train_steps=cfg.trainer.ckpt_every or None,
    )  # fmt: skip
    timer = StepTimer()
    stability = build_stability_callback(cfg)  # None when stability.enabled=false
    extras = extra_callbacks(cfg)  # e.g. Optuna pruning inside a trial
    callbacks = [ckpt, timer] + ([stability] if stability else []) + extras
    trainer = build_trainer(cfg, run_dir, loggers, callbacks)
    trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)
    if trainer.interrupted:
        raise RuntimeError("training was interrupted")
    diverged = stability is not None and stability.diverged
    if not diverged or params_finite(model):  # a non-finite model gets no test metrics
        trainer.test(module, datamodule=dm, verbose=False, weights_only=True)
    pruner = next((c for c in extras if getattr(c, "pruned", False)), None)
    summary["status"] = "diverged" if diverged else "pruned" if pruner else "completed"
    if diverged:
        summary["diverged_at_step"] = stability.diverged_at_step
    elif pruner is not None:
        summary["pruned_at_step"] = pruner.pruned_at_step
    if stability is not None and rank_zero_only.rank == 0:
        stability.record(summary, run_dir)  # summary["stability"] and stability.json
    summary["steps"] = trainer.global_step
    summary["throughput"] = {"train_steps_per_s": timer.steps_per_s, "train_s": timer.train_s}
    summary["metrics"] = {
        **{f"test/{k}": v for k, v in module.test_results.items()},
        **{f"val_best/{k}": v for k, v in module.best_val.items()},
        **{f"val_last/{k}": v for k, v in module.last_val.items()},
    }


def run_job(
    cfg: DictConfig, run_dir: str | os.PathLike[str], *, checked: bool = False
) -> dict[str, Any]:
    """Train and evaluate one configuration in ``run_dir``; return its summary."""
    t0 = time.perf_counter()
    run_dir = str(run_dir)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    container = OmegaConf.to_container(cfg, resolve=True)
    # `resnorm train` checks in app.py, before Lightning is imported, and says so with
    # checked=True; any other caller gets the check here, before anything is written.
    if not checked:
        check_config(cfg)
    summary = base_summary(cfg, container)
    summary_path = Path(run_dir) / SUMMARY
    _record(summary, summary_path)
    quiet_lightning()
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    try:
        _train(cfg, run_dir, summary)
    except BaseException as exc:
        summary["status"] = "failed"
        summary["error"] = f"{type(exc).__name__}: {exc}"
        summary["wall_s"] = time.perf_counter() - t0
        _record(summary, summary_path)
        finish_wandb("failed")
        raise
    finally:
        TensorLoader.keep_on(None)
        if rank_zero_only.rank == 0:
            merge_after_resume(run_dir)
    summary["wall_s"] = time.perf_counter() - t0
    _record(summary, summary_path)
    finish_wandb(summary["status"])
    return summary
