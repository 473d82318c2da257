"""The LightningModule: loss, optimisation and evaluation for every task kind."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from resnorm.data.spec import TaskSpec
from resnorm.training.metrics import MONITOR, ClassificationMetrics, LanguageModelMetrics
from resnorm.training.optim import build_optimizer


@runtime_checkable
class GradNormSource(Protocol):
    """A LightningModule that hands over the global gradient norm it takes before clipping.

    Clipping computes that norm anyway, so a watcher (the stability monitor) reads it
    instead of taking a second one: it calls ``request_grad_norm()`` once before the fit;
    from then on, after the module's ``on_before_optimizer_step``, ``last_grad_norm`` is
    that step's norm as a device tensor (None when no parameter had a gradient). A module
    without these methods is still monitored: the watcher then takes the norm itself.
    """

    def request_grad_norm(self) -> None: ...

    @property
    def last_grad_norm(self) -> torch.Tensor | None: ...


class TaskModule(pl.LightningModule):
    """The LightningModule of every task; a ``GradNormSource``."""

    def __init__(
        self,
        model: nn.Module,
        spec: TaskSpec,
        optim: dict[str, Any],
        total_steps: int,
        grad_clip: float | None = None,
    ) -> None:
        super().__init__()
        self.model, self.spec = model, spec
        self.optim_cfg, self.total_steps, self.grad_clip = optim, total_steps, grad_clip
        make = (
            LanguageModelMetrics
            if spec.kind == "lm"
            else lambda: ClassificationMetrics(spec.num_classes)
        )
        self.val_metrics, self.test_metrics = make(), make()
        self.monitor, self.mode = MONITOR[spec.kind]
        self.best_val: dict[str, float] = {}
        self.last_val: dict[str, float] = {}
        self.test_results: dict[str, float] = {}
        self._grad_norm: torch.Tensor | None = None  # see GradNormSource
        self._grad_norm_requested = False

    # ---- GradNormSource ----------------------------------------------------------------
    def request_grad_norm(self) -> None:
        """Take the norm on every step, also when there is no clipping to take it."""
        self._grad_norm_requested = True

    @property
    def last_grad_norm(self) -> torch.Tensor | None:
        """Global gradient norm before clipping of the last optimizer step (device tensor)."""
        return self._grad_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self.model(x), y)
        if self._is_log_step():
            self.log("train/loss", loss, on_step=True, on_epoch=False)
        return loss

    def _is_log_step(self) -> bool:
        # The loggers only write on every log_every_n_steps-th step; self.log costs ~1 ms of
        # Python, so it is skipped on the steps whose value would be overwritten unwritten.
        trainer = self._trainer  # None when called outside a fit (tests, probes)
        every = trainer.log_every_n_steps if trainer is not None else 0
        return every > 0 and (self.global_step + 1) % every == 0

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], metrics: nn.Module) -> None:
        x, y = batch
        logits = self.model(x)
        metrics.update(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), self.loss(logits, y))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self._eval_step(batch, self.val_metrics)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self._eval_step(batch, self.test_metrics)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.val_metrics.reset()
            return
        results = self.val_metrics.compute()
        self.val_metrics.reset()
        self.last_val = results
        value, best = results[self.monitor], self.best_val.get(self.monitor)
        if best is None or (value > best if self.mode == "max" else value < best):
            self.best_val = {**results, "step": self.global_step}
        self.log_dict({f"val/{k}": v for k, v in results.items()})

    def on_test_epoch_end(self) -> None:
        self.test_results = self.test_metrics.compute()
        self.test_metrics.reset()
        self.log_dict({f"test/{k}": v for k, v in self.test_results.items()})

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Clipped here rather than by the Trainer: Lightning refuses to clip for fused AdamW
        # even under bf16, where no gradient scaler is involved. Callbacks (the stability
        # monitor) run this hook first, so they see the norm before clipping.
        params = self.model.parameters()
        if self.grad_clip:
            self._grad_norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip, foreach=True)
        elif self._grad_norm_requested:
            grads = [p.grad for p in params if p.grad is not None]
            self._grad_norm = torch.nn.utils.get_total_norm(grads, foreach=True) if grads else None

    def configure_optimizers(self) -> dict[str, Any]:
        opt, sched = build_optimizer(self.model, total_steps=self.total_steps, **self.optim_cfg)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # best_val survives a resume through the checkpoint
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["resnorm"] = {"best_val": self.best_val, "last_val": self.last_val}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("resnorm", {})
        self.best_val, self.last_val = state.get("best_val", {}), state.get("last_val", {})
