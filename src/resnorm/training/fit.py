"""Build, fit and test one pack: the Lightning side of a training job.

Member i of a pack is built exactly as its solo run builds its model (the global RNG
seeded with its seed, then the model constructed; data setup draws nothing from it), so
the pack starts from each member's own init and reads each member's own data order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.utilities.rank_zero import rank_zero_only
from torch import nn

from resnorm.data.loaders import TensorLoader
from resnorm.data.split_loaders import packed_train_loader
from resnorm.member_config import MemberConfig
from resnorm.models import attach_member_dropout
from resnorm.models.members import stack_members
from resnorm.outputs import COMPLETED, DIVERGED, PRUNED
from resnorm.stability import params_finite
from resnorm.training.builders import (
    build_datamodule,
    build_model,
    data_dependent_init,
    flat_config,
)
from resnorm.training.callbacks import StepTimer, extra_callbacks
from resnorm.training.checkpointing import checkpoint_seconds
from resnorm.training.csv_log import stash_for_resume
from resnorm.training.last_checkpoint import LastCheckpoint, resume_path
from resnorm.training.loggers import build_loggers
from resnorm.training.module import TaskModule
from resnorm.training.pack_logger import PackLogger
from resnorm.training.progress import StepProgressBar, wants_progress_bar
from resnorm.training.stability_callback import build_stability_callback

MEMBER_CKPT = "checkpoints/member.ckpt"  # a packed member's final weights (members=1 shapes)


class PackData(pl.LightningDataModule):
    """A task's data module with the training loader of a pack (one data order per seed)."""

    def __init__(self, dm: pl.LightningDataModule, seeds: Sequence[int]) -> None:
        super().__init__()
        self.dm, self.seeds, self.spec = dm, list(seeds), dm.spec

    def setup(self, stage: str | None = None) -> None:
        self.dm.setup(stage)

    def train_dataloader(self) -> Any:
        return packed_train_loader(self.dm, self.seeds)

    def val_dataloader(self) -> Any:
        return self.dm.val_dataloader()

    def test_dataloader(self) -> Any:
        return self.dm.test_dataloader()


class ResumedLine(pl.Callback):
    """``resnorm: resumed from step N (<checkpoint>) [<run dir>]``, once per member, when
    the fit starts: the step is the one Lightning restored, not a guess from the file."""

    def __init__(self, ckpt: str, run_dirs: Sequence[str]) -> None:
        self.ckpt, self.run_dirs = ckpt, list(run_dirs)

    @rank_zero_only
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for run_dir in self.run_dirs:
            print(f"resnorm: resumed from step {trainer.global_step} ({self.ckpt}) [{run_dir}]",
                  flush=True)  # fmt: skip


def build_members(cfgs: Sequence[DictConfig], dm: Any) -> tuple[nn.Module, list[nn.Module]]:
    """The pack model and each member's solo (members=1) model, with its own init.

    Data-dependent inits (Admin's profiling pass) run on each solo model with the member's
    own first batch, before the solos are stacked into the pack.
    """
    solos = []
    for cfg in cfgs:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        solo = build_model(cfg.model, dm.spec)
        saved, dm.seed = dm.seed, cfg.seed
        try:
            data_dependent_init(solo, dm)
        finally:
            dm.seed = saved
        solos.append(solo)
    if len(solos) == 1:
        return solos[0], solos
    with torch.random.fork_rng():  # its own init is overwritten: leave the RNG as it is
        pack = build_model(cfgs[0].model, dm.spec, members=len(solos))
    stack_members(pack, solos)
    pl.seed_everything(cfgs[0].seed, workers=True, verbose=False)
    return pack, solos


def build_trainer(cfg: DictConfig, root: str, loggers: list, callbacks: list) -> pl.Trainer:
    """The Trainer of a fit; with a step progress bar when ``trainer.progress`` asks for one."""
    t = cfg.trainer
    if wants_progress_bar(t.get("progress", "auto")):
        callbacks = [*callbacks, StepProgressBar()]
    bar = any(isinstance(c, pl.callbacks.ProgressBar) for c in callbacks)
    return pl.Trainer(
        accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, precision=t.precision,
        max_steps=t.max_steps, max_epochs=-1, val_check_interval=t.val_every,
        check_val_every_n_epoch=None, log_every_n_steps=t.log_every,
        deterministic=t.deterministic,
        logger=loggers, callbacks=callbacks, default_root_dir=root,
        enable_progress_bar=bar, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip


def _tags(summary: dict[str, Any]) -> list[str]:
    tags = [f"{k}={summary[k]}" for k in ("variant", "residual", "norm_position", "norm")]
    return [*tags, f"depth={summary['depth']}"]


def fit_pack(
    cfgs: Sequence[DictConfig],
    run_dirs: Sequence[str],
    pack_dir: str,
    summaries: list[dict[str, Any]],
    loggers: list[list[Any]],
) -> None:
    """Build, fit and test the pack; fill ``summaries`` and ``loggers`` (each member's
    Lightning loggers, for the caller to finish) in place."""
    cfg, k = cfgs[0], len(cfgs)
    if cfg.trainer.accelerator in ("gpu", "cuda"):
        TensorLoader.keep_on(torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    # each member trains with its own record: seed, optimizer, dropout, thresholds
    members = [MemberConfig.from_config(c) for c in cfgs]
    model, solos = build_members(cfgs, dm)
    streams = attach_member_dropout(model, [m.dropout for m in members], [m.seed for m in members])
    for summary, solo in zip(summaries, solos, strict=True):
        summary["params"] = sum(p.numel() for p in solo.parameters())
        summary["chance"] = dm.spec.chance
    if cfg.model.get("compile"):
        model.compile()  # in place: parameter names and checkpoints stay as they are
    optims = [
        {**m.optim.adamw(), "fused": c.optim.fused} for m, c in zip(members, cfgs, strict=True)
    ]
    clips = [m.optim.grad_clip for m in members]
    module = TaskModule(model, dm.spec, optims, cfg.trainer.max_steps, clips, solos, streams)
    resume = resume_path(Path(pack_dir) / "checkpoints") if cfg.trainer.resume else None
    if resume and rank_zero_only.rank == 0:
        for summary, run_dir in zip(summaries, run_dirs, strict=True):
            stash_for_resume(run_dir)
            summary["resumed"] = summary.get("resumed", 0) + 1
    for c, run_dir, summary in zip(cfgs, run_dirs, summaries, strict=True):
        loggers.append(build_loggers(c, run_dir, flat_config(c), _tags(summary)))
    ckpt = LastCheckpoint(os.path.join(pack_dir, "checkpoints"), cfg.trainer.ckpt_every,
                          checkpoint_seconds(cfg.trainer))  # fmt: skip
    timer = StepTimer()
    # None when stability.enabled=false
    stability = build_stability_callback(cfg, [m.stability for m in members])
    extras = extra_callbacks(cfg) if k == 1 else []  # e.g. Optuna pruning inside a trial
    callbacks = [ckpt, timer] + ([stability] if stability else []) + extras
    if resume:
        callbacks.append(ResumedLine(resume, run_dirs))
    trainer = build_trainer(cfg, pack_dir, [PackLogger(loggers)], callbacks)
    data = PackData(dm, [c.seed for c in cfgs])
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    if trainer.interrupted:
        raise RuntimeError("training was interrupted")
    diverged = [m.diverged for m in stability.monitors] if stability else [False] * k
    finite = [not d or params_finite(module.views[i]) for i, d in enumerate(diverged)]
    if any(finite):  # a non-finite member gets no test metrics
        trainer.test(module, datamodule=data, verbose=False, weights_only=True)
    pruner = next((c for c in extras if getattr(c, "pruned", False)), None)
    for i, (summary, run_dir) in enumerate(zip(summaries, run_dirs, strict=True)):
        _fill(summary, i, module, timer, stability, finite[i], pruner)
        if stability is not None and rank_zero_only.rank == 0:
            stability.record(summary, run_dir, i)  # summary["stability"] and stability.json
        if k > 1 and rank_zero_only.rank == 0:
            path = Path(run_dir) / MEMBER_CKPT
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"state_dict": module.views[i].state_dict(), "pack": summary["pack"],
                        "global_step": trainer.global_step}, path)  # fmt: skip


def _fill(
    summary: dict[str, Any],
    i: int,
    module: TaskModule,
    timer: StepTimer,
    stability: Any,
    finite: bool,
    pruner: Any,
) -> None:
    """Member i's status, steps, throughput and metrics."""
    diverged = stability is not None and stability.monitors[i].diverged
    summary["status"] = DIVERGED if diverged else PRUNED if pruner else COMPLETED
    if diverged:
        summary["diverged_at_step"] = stability.monitors[i].diverged_at_step
    elif pruner is not None:
        summary["pruned_at_step"] = pruner.pruned_at_step
    summary["steps"] = module.optimizer.steps[i]  # a frozen member stopped counting
    # one timer for the whole pack: "members" > 1 says these are the pack's numbers, the
    # same in every member's summary (one measurement, not a per-run step time)
    summary["throughput"] = {
        "train_steps_per_s": timer.steps_per_s,
        "train_s": timer.train_s,
        "members": len(module.views),
    }
    test = module.test_results[i] if finite else {}
    summary["metrics"] = {
        **{f"test/{k}": v for k, v in test.items()},
        **{f"val_best/{k}": v for k, v in module.best_val[i].items()},
        **{f"val_last/{k}": v for k, v in module.last_val[i].items()},
    }
