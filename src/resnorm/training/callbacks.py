"""Lightning callbacks chosen by the config, and the step timer every run carries."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf


class StepTimer(pl.Callback):
    """Training throughput, excluding the first ``skip`` steps (warm-up, lazy init).

    Two clock reads per run plus one per step start; the device is synchronised only
    at the two ends, so the hot path gains no host-device sync. A pack has one timer for
    all its members (they step together in one process): its time is the pack's, and no
    member has a step time of its own.
    """

    def __init__(self, skip: int = 5) -> None:
        self.skip = skip
        self.t0: float | None = None
        self.start_step = 0
        self.steps_per_s: float | None = None
        self.train_s: float | None = None

    def _now(self, module: pl.LightningModule) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, *_: Any):
        if self.t0 is None and trainer.global_step >= self.skip:
            self.t0, self.start_step = self._now(module), trainer.global_step

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.t0 is None:
            return
        steps = trainer.global_step - self.start_step
        self.train_s = self._now(module) - self.t0
        self.steps_per_s = steps / self.train_s if steps > 0 and self.train_s > 0 else None


def extra_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Callbacks that only some runs need, e.g. Optuna pruning inside a trial."""
    callbacks: list[pl.Callback] = []
    if OmegaConf.select(cfg, "optuna.trial") is not None:
        from resnorm.jobs.optuna_pruning import OptunaPruningCallback  # lazy: loads optuna

        callbacks.append(OptunaPruningCallback.from_config(cfg))
    return callbacks
