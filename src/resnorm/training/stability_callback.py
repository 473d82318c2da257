"""When the stability probes run during training, and where their results go.

Every step: the global gradient norm (before clipping) and the loss feed the step monitor
(``resnorm.stability.step_monitor``: divergence, spikes, norm statistics). On an
accelerator these values stay on the device and are judged together every
``check_every`` steps (one sync per k steps instead of one per step); on CPU a transfer
is free and every step is checked, so a diverged run stops at the step it diverged.

Every ``probe_every`` steps: per-layer / per-sublayer gradient norms of the training
batch, the update-to-weight ratio of that step, and a forward probe on a fixed batch
(rank collapse, residual RMS, attention entropy and max logit). At initialisation
(before any optimizer step) and at the end, the per-layer gradient profile and the
forward probe on the fixed batch go to ``stability.json``. What is recorded is shaped in
``resnorm.stability.record``; this module decides when, and talks to Lightning.

The module being trained hands over its norm through ``GradNormSource`` (TaskModule
does); the probes use its ``model`` (the network) and ``loss(logits, targets)``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from resnorm.outputs import STABILITY, write_json_atomic
from resnorm.stability import (
    ProbeLog,
    StepMonitor,
    check_stability_options,
    full_probe,
    global_grad_norm,
    layer_grad_norms,
    probe_metrics,
    snapshot_block_params,
    stability_json,
    step_probe,
    summary_scalars,
)
from resnorm.training.module import GradNormSource

ACCELERATOR_CHECK_EVERY = 16  # check_every=null on a GPU: one host sync per 16 steps


class StabilityCallback(pl.Callback):
    """Runs the step monitor and the probes on Lightning's schedule; stops a diverged run.

    ``monitor`` (divergence, spikes, norm statistics) and ``probes`` (what the probes
    measured) are plain objects of ``resnorm.stability``; both are saved in checkpoints.
    """

    def __init__(
        self,
        probes: bool = True,
        probe_every: int = 50,
        probe_batch_size: int = 64,
        divergence_loss_multiple: float | None = 3.0,
        divergence_smoothing: float = 0.9,
        spike_multiple: float = 2.0,
        spike_window: int = 50,
        spike_min_history: int = 10,
        spike_min_rise: float = 0.1,
        check_every: int | None = None,
    ) -> None:
        check_stability_options(
            {"probes": probes, "probe_every": probe_every, "probe_batch_size": probe_batch_size,
             "check_every": check_every}
        )  # fmt: skip
        self.check_every = check_every
        self.monitor = StepMonitor(
            divergence_loss_multiple=divergence_loss_multiple,
            divergence_smoothing=divergence_smoothing,
            spike_multiple=spike_multiple,
            spike_window=spike_window,
            spike_min_history=spike_min_history,
            spike_min_rise=spike_min_rise,
        )
        self.probes = ProbeLog(probes, probe_every, probe_batch_size)
        self._grad_norm: torch.Tensor | None = None  # taken here when the module has none
        self._module_norm = False  # whether the module is a GradNormSource
        self._layer_grads: dict[str, list[float]] | None = None
        self._snapshot: list[list[torch.Tensor]] | None = None
        self._probe_batch: tuple[torch.Tensor, ...] | None = None
        self._last_step, self._last_logged = -1, 0

    @property
    def diverged(self) -> bool:
        return self.monitor.diverged

    @property
    def diverged_at_step(self) -> int | None:
        return self.monitor.diverged_at_step

    # ---- schedule -------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after a resume, log on the same step grid as an uninterrupted run
        self._last_logged = trainer.global_step

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A module that reports its pre-clipping norm saves a second norm per step.
        self._module_norm = isinstance(pl_module, GradNormSource)
        if self._module_norm:
            pl_module.request_grad_norm()
        if self.check_every is None:
            on_cpu = pl_module.device.type == "cpu"
            self.check_every = 1 if on_cpu else ACCELERATOR_CHECK_EVERY

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self.probes.enabled:
            return
        if self._probe_batch is None:
            self._probe_batch = self._pick_probe_batch(trainer, pl_module, batch)
        if self.probes.init is None and trainer.global_step == 0:
            self.probes.init = self._full_probe(pl_module, step=0)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        if not self._module_norm:  # callbacks run before the module clips; stays on device
            self._grad_norm = global_grad_norm(pl_module)
        if self.probes.due(trainer.global_step + 1):
            t0 = time.perf_counter()
            self._layer_grads = layer_grad_norms(pl_module)
            self._snapshot = snapshot_block_params(pl_module)
            self.probes.seconds += time.perf_counter() - t0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        step = trainer.global_step
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if step == self._last_step or loss is None:  # no optimizer step was taken
            return
        self._last_step = step
        norm = pl_module.last_grad_norm if self._module_norm else self._grad_norm
        self.monitor.add(step, loss, norm)
        self._grad_norm = None
        if len(self.monitor.pending) >= self.check_every or step >= trainer.max_steps:
            stopping = trainer.should_stop
            self._check(trainer, pl_module)
            every = trainer.log_every_n_steps
            if trainer.should_stop and not stopping and every and step % every:
                # Lightning writes the logs of the step a run stops at; the module only
                # logs train/loss on log steps, so the stop step's loss is logged here.
                pl_module.log("train/loss", loss.detach(), on_step=True, on_epoch=False)
        if self._snapshot is not None and not self.diverged:
            self._probe(trainer, pl_module, step)
        self._layer_grads = self._snapshot = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module)
        if self.probes.enabled and self._probe_batch is not None:
            self.probes.final = self._full_probe(pl_module, step=trainer.global_step)

    # ---- per-step checks ------------------------------------------------------------
    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Judge the pending steps; stop every rank once one has diverged; log on the grid."""
        step = self.monitor.judge()
        if step is None:
            return
        stop = trainer.strategy.reduce_boolean_decision(self.diverged, all=False)
        if stop and not self.diverged:
            self.monitor.divergence.trip(step, "diverged_on_another_rank")
        if stop:
            trainer.should_stop = True
            self._mark_wandb(trainer)
        every = trainer.log_every_n_steps
        if stop or step // every > self._last_logged // every:
            self._last_logged = step
            self._log(trainer, self.monitor.metrics(stopping=stop), step)

    @rank_zero_only
    def _mark_wandb(self, trainer: pl.Trainer) -> None:
        """Mark the W&B run at once; the run itself is finished by run.py."""
        if "wandb" not in sys.modules:
            return
        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                lg.experiment.summary.update(
                    {"status": "diverged", "diverged_at_step": self.diverged_at_step}
                )

    # ---- probes ---------------------------------------------------------------------
    def _pick_probe_batch(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, train_batch: Any
    ) -> tuple[torch.Tensor, ...]:
        """The first examples of the validation split (the same for every run of a study);
        the first training batch when there is no validation split."""
        batch = train_batch
        dm = trainer.datamodule
        if dm is not None and hasattr(dm, "val_dataloader"):
            try:
                batch = next(iter(dm.val_dataloader()))
            except (StopIteration, NotImplementedError, KeyError, MisconfigurationException):
                batch = train_batch
        size = self.probes.batch_size
        return tuple(t[:size].detach().to(pl_module.device) for t in batch)

    def _full_probe(self, pl_module: pl.LightningModule, step: int) -> dict[str, Any]:
        t0 = time.perf_counter()

        def loss_fn(model: torch.nn.Module, batch: Any) -> torch.Tensor:
            return pl_module.loss(model(batch[0]), batch[1])

        record = full_probe(pl_module.model, loss_fn, self._probe_batch, step)
        self.probes.seconds += time.perf_counter() - t0
        return record

    def _probe(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> None:
        t0 = time.perf_counter()
        inputs = self._probe_batch[0]
        record = step_probe(pl_module.model, inputs, step, self._layer_grads, self._snapshot)
        self.probes.history.append(record)
        self._log(trainer, probe_metrics(record), step)
        self.probes.seconds += time.perf_counter() - t0

    @staticmethod
    def _log(trainer: pl.Trainer, metrics: dict[str, float], step: int) -> None:
        for lg in trainer.loggers:
            lg.log_metrics(metrics, step=step)

    # ---- results --------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Scalars for summary.json["stability"]."""
        return summary_scalars(self.monitor, self.probes)

    def report(self) -> dict[str, Any]:
        """The content of stability.json."""
        return stability_json(self.monitor, self.probes)

    def record(self, summary: dict[str, Any], run_dir: str | Path) -> None:
        """Write summary["stability"] and <run_dir>/stability.json."""
        summary["stability"] = self.summary()
        write_json_atomic(Path(run_dir) / STABILITY, self.report())

    # ---- resume ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.monitor.state_dict(), **self.probes.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.monitor.load_state_dict(state)
        self.probes.load_state_dict(state)


def build_stability_callback(cfg: DictConfig) -> StabilityCallback | None:
    """The callback from ``cfg.stability``; None when ``stability.enabled=false``."""
    s = cfg.get("stability")
    if s is None or not s.enabled:
        return None
    return StabilityCallback(**check_stability_options(s))
