"""When the stability probes run during training, and where their results go.

Per member of the pack (a single run is a pack of one), every step: the global gradient
norm (before clipping) and the loss feed that member's step monitor
(``resnorm.stability.step_monitor``: divergence, spikes, norm statistics). On an
accelerator these values stay on the device and are judged together every
``check_every`` steps (one sync per k steps instead of one per step); on CPU a transfer
is free and every step is checked, so a diverged run stops at the step it diverged. A
member that diverges is frozen (its updates masked) and recorded; the pack stops when
every member has.

Every ``probe_every`` steps: per-layer / per-sublayer gradient norms of the training
batch, the update-to-weight ratio of that step, and a forward probe on a fixed batch
(rank collapse, residual RMS, attention entropy and max logit). At initialisation
(before any optimizer step) and at the end, the per-layer gradient profile and the
forward probe on the fixed batch go to ``stability.json``. What is recorded is shaped in
``resnorm.stability.record``; this module decides when, and talks to Lightning.

The module hands over its norms through ``GradNormSource`` (TaskModule does); the probes
run on each member's ``views[i]`` (a members=1 model sharing the member's parameters), or
on ``model`` for any other LightningModule, with its ``loss(logits, targets)``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from resnorm.jobs.member_metrics import member_key
from resnorm.member_config import StabilityThresholds
from resnorm.outputs import DIVERGED, STABILITY, write_json_atomic
from resnorm.stability import (
    ProbeLog,
    StepMonitor,
    check_stability_options,
    global_grad_norm,
    probe_metrics,
    stability_json,
    summary_scalars,
)
from resnorm.training.member_probes import MemberProbes
from resnorm.training.module import GradNormSource
from resnorm.training.pack_logger import PackLogger

ACCELERATOR_CHECK_EVERY = 16  # check_every=null on a GPU: one host sync per 16 steps


class StabilityCallback(pl.Callback):
    """Runs the step monitors and the probes on Lightning's schedule; freezes a diverged
    member and stops the fit when none is left.

    ``monitors[i]`` (divergence, spikes, norm statistics) and ``probe_logs[i]`` (what the
    probes measured) are plain objects of ``resnorm.stability``, saved in checkpoints.
    """

    def __init__(
        self,
        probes: bool = True,
        probe_every: int = 50,
        probe_batch_size: int = 64,
        check_every: int | None = None,
        members: int = 1,
        thresholds: StabilityThresholds | Sequence[StabilityThresholds] | None = None,
        **threshold_options: Any,
    ) -> None:
        """``thresholds``: one record per member, or one for every member; without it, the
        threshold fields given as keywords (``spike_window=5``) apply to every member."""
        check_stability_options(
            {"probes": probes, "probe_every": probe_every, "probe_batch_size": probe_batch_size,
             "check_every": check_every}
        )  # fmt: skip
        self.check_every = check_every
        if thresholds is None:
            thresholds = StabilityThresholds(**threshold_options)
        elif threshold_options:
            raise TypeError("give thresholds as records or as keywords, not both")
        if isinstance(thresholds, StabilityThresholds):
            thresholds = [thresholds] * members
        if len(thresholds) != members:
            raise ValueError(f"{len(thresholds)} threshold records for {members} members")
        self.monitors = [StepMonitor(**t.as_dict()) for t in thresholds]
        self.probe_logs = [ProbeLog(probes, probe_every, probe_batch_size) for _ in range(members)]
        self._grad_norm: torch.Tensor | None = None  # taken here when the module has none
        self._module_norm = False  # whether the module is a GradNormSource
        self._probes = MemberProbes(self.probe_logs)
        self._last_step, self._last_logged = -1, 0

    @property
    def k(self) -> int:
        return len(self.monitors)

    @property
    def monitor(self) -> StepMonitor:
        """The single member's monitor (a solo run)."""
        return self.monitors[0]

    @property
    def probes(self) -> ProbeLog:
        return self.probe_logs[0]

    @property
    def diverged(self) -> bool:
        """Whether every member has diverged (the fit stops)."""
        return all(m.diverged for m in self.monitors)

    @property
    def diverged_at_step(self) -> int | None:
        return self.monitors[0].diverged_at_step

    # ---- schedule -------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after a resume, log on the same step grid as an uninterrupted run
        self._last_logged = trainer.global_step

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if getattr(pl_module, "k", 1) != self.k:
            raise ValueError(f"a stability callback for {self.k} members got a pack of "
                             f"{getattr(pl_module, 'k', 1)}")  # fmt: skip
        # A module that reports its pre-clipping norms saves a second norm per step.
        self._module_norm = isinstance(pl_module, GradNormSource)
        if self._module_norm:
            pl_module.request_grad_norm()
        if self.check_every is None:
            on_cpu = pl_module.device.type == "cpu"
            self.check_every = 1 if on_cpu else ACCELERATOR_CHECK_EVERY

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self._probes.enabled:
            return
        if self._probes.batch is None:
            self._probes.pick_batch(trainer, pl_module, batch)
        if trainer.global_step == 0:
            for i, log in enumerate(self.probe_logs):
                if log.init is None:
                    log.init = self._probes.full(pl_module, i, step=0)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        if not self._module_norm:  # callbacks run before the module clips; stays on device
            self._grad_norm = global_grad_norm(pl_module)
        if self._probes.due(trainer.global_step + 1):
            self._probes.before_update(pl_module, self._active(pl_module))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        step = trainer.global_step
        losses = _member_losses(outputs)
        if step == self._last_step or losses is None:  # no optimizer step was taken
            return
        self._last_step = step
        norms = pl_module.last_grad_norms if self._module_norm else [self._grad_norm]
        for i in self._active(pl_module):
            self.monitors[i].add(step, losses[i], norms[i])
        self._grad_norm = None
        pending = max(len(m.pending) for m in self.monitors)
        if pending >= self.check_every or step >= trainer.max_steps:
            self._check(trainer, pl_module, losses)
        for i in self._active(pl_module):
            record = self._probes.after_update(pl_module, i, step)
            if record is not None:
                self._log_member(trainer, i, probe_metrics(record), step)
        self._probes.clear()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module, None)
        if self._probes.enabled and self._probes.batch is not None:
            for i, log in enumerate(self.probe_logs):
                log.final = self._probes.full(pl_module, i, step=trainer.global_step)

    def _active(self, pl_module: pl.LightningModule) -> list[int]:
        frozen = getattr(pl_module, "frozen", None) or (False,) * self.k
        return [i for i in range(self.k) if not frozen[i] and not self.monitors[i].diverged]

    # ---- per-step checks ------------------------------------------------------------
    def _check(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, losses: torch.Tensor | None
    ) -> None:
        """Judge the pending steps; freeze members that diverged (on any rank); stop the fit
        when none is left; log on the grid."""
        judged = [(i, m.diverged, m.judge()) for i, m in enumerate(self.monitors)]
        judged = [(i, was, step) for i, was, step in judged if step is not None]
        if not judged:
            return
        newly = []
        for i, was, step in judged:
            monitor = self.monitors[i]
            stop = trainer.strategy.reduce_boolean_decision(monitor.diverged, all=False)
            if stop and not monitor.diverged:
                monitor.divergence.trip(step, "diverged_on_another_rank")
            if stop and not was:
                newly.append(i)
                self._mark_wandb(trainer, i)
                if hasattr(pl_module, "freeze"):
                    pl_module.freeze(i)
        pack_stops = self.diverged
        if pack_stops:
            trainer.should_stop = True
        for lg in trainer.loggers if not pack_stops else ():
            for i in newly if isinstance(lg, PackLogger) else ():
                lg.end_member(i, trainer.global_step)
        every = trainer.log_every_n_steps
        step = judged[-1][2]
        on_grid = step // every > self._last_logged // every
        for i, _, _ in judged:
            if i in newly or on_grid:
                self._log_member(trainer, i, self.monitors[i].metrics(stopping=i in newly), step)
        if losses is not None and every and step % every:
            # The loss of the step a member stops at, although off the log grid: Lightning
            # writes the logs of the step a fit stops at; a member stopping inside a pack
            # that goes on is written to its own loggers directly.
            for i in newly:
                if pack_stops:
                    pl_module.log(member_key(i, "train/loss"), losses[i], on_step=True,
                                  on_epoch=False)  # fmt: skip
                else:
                    self._log_member(trainer, i, {"train/loss": float(losses[i])}, step)
        if newly or on_grid:
            self._last_logged = step

    def _log_member(self, trainer: pl.Trainer, i: int, metrics: dict[str, float], step: int):
        for lg in trainer.loggers:
            if isinstance(lg, PackLogger):
                lg.log_member(i, metrics, step)
            else:  # a module logging without a PackLogger (k = 1)
                lg.log_metrics(metrics, step=step)

    @rank_zero_only
    def _mark_wandb(self, trainer: pl.Trainer, i: int) -> None:
        """Mark member i's W&B run at once; the run itself is finished by run.py."""
        if "wandb" not in sys.modules:
            return
        for lg in trainer.loggers:
            members = lg.members[i] if isinstance(lg, PackLogger) else [lg]
            for wb in (m for m in members if isinstance(m, WandbLogger)):
                wb.experiment.summary.update(
                    {"status": DIVERGED, "diverged_at_step": self.monitors[i].diverged_at_step}
                )

    # ---- results --------------------------------------------------------------------
    def summary(self, i: int = 0) -> dict[str, Any]:
        """Scalars for member i's summary.json["stability"]."""
        return summary_scalars(self.monitors[i], self.probe_logs[i])

    def report(self, i: int = 0) -> dict[str, Any]:
        """The content of member i's stability.json."""
        return stability_json(self.monitors[i], self.probe_logs[i])

    def record(self, summary: dict[str, Any], run_dir: str | Path, i: int = 0) -> None:
        """Write member i's summary["stability"] and <run_dir>/stability.json."""
        summary["stability"] = self.summary(i)
        write_json_atomic(Path(run_dir) / STABILITY, self.report(i))

    # ---- resume ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        pairs = zip(self.monitors, self.probe_logs, strict=True)
        return {"members": [{**m.state_dict(), **p.state_dict()} for m, p in pairs]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for m, p, s in zip(self.monitors, self.probe_logs, state["members"], strict=True):
            m.load_state_dict(s)
            p.load_state_dict(s)


def _member_losses(outputs: Any) -> torch.Tensor | None:
    """(k,) losses of a TaskModule step, or the one loss of any other module."""
    if isinstance(outputs, dict):
        if "member_losses" in outputs:
            return outputs["member_losses"]
        outputs = outputs.get("loss")
    return None if outputs is None else outputs.detach().reshape(1)


def build_stability_callback(
    cfg: DictConfig, thresholds: Sequence[StabilityThresholds] | None = None
) -> StabilityCallback | None:
    """The callback from ``cfg.stability`` (the pack's probe schedule) with one threshold
    record per member (default: ``cfg``'s own, for a single run); None when
    ``stability.enabled=false``."""
    s = cfg.get("stability")
    if s is None or not s.enabled:
        return None
    options = check_stability_options(s)
    if thresholds is None:
        thresholds = [StabilityThresholds.from_config(options)]
    pack_wide = {k: v for k, v in options.items() if k not in StabilityThresholds.names()}
    return StabilityCallback(**pack_wide, members=len(thresholds), thresholds=thresholds)
