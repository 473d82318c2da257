"""The LightningModule: loss, optimisation and evaluation for every task kind.

It trains a pack of k members (k = 1 is a single run): the model's parameters carry a
leading member dimension, training batches are (k, B, ...) with each member's own data
order, and everything per run stays per member: loss, LR schedule, AdamW state, gradient
clipping, freezing after divergence, metrics and best validation. Member i's values are
logged as ``m{i}/<name>`` and reach its own loggers through ``PackLogger``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from resnorm.data.spec import TaskSpec
from resnorm.jobs.member_metrics import member_key, member_metrics
from resnorm.models.dropout import MemberStreams
from resnorm.models.members import member_view
from resnorm.training.metrics import MONITOR, ClassificationMetrics, LanguageModelMetrics
from resnorm.training.packed_optim import PackedAdamW, clip_member_grads_


@runtime_checkable
class GradNormSource(Protocol):
    """A LightningModule that hands over each member's gradient norm before clipping.

    Clipping computes those norms anyway, so a watcher (the stability monitor) reads them
    instead of taking them again: it calls ``request_grad_norm()`` once before the fit;
    from then on, after the module's ``on_before_optimizer_step``, ``last_grad_norms`` holds
    that step's norm per member as device tensors (None for a frozen member). A module
    without these methods is still monitored: the watcher then takes the norm itself.
    """

    def request_grad_norm(self) -> None: ...

    @property
    def last_grad_norms(self) -> list[torch.Tensor | None]: ...


class TaskModule(pl.LightningModule):
    """The LightningModule of every task and pack size; a ``GradNormSource``.

    ``optims[i]`` and ``grad_clips[i]`` are member i's optimizer options (the keywords of
    ``build_optimizer``) and clipping norm; ``views[i]`` is a members=1 model sharing
    member i's parameters (for probes and per-member checkpoints; the model itself when
    k = 1); ``dropout_streams`` are the members' dropout generators (models/dropout.py),
    saved with the checkpoint so that a resumed run draws the masks it would have drawn.
    """

    def __init__(
        self,
        model: nn.Module,
        spec: TaskSpec,
        optims: Sequence[dict[str, Any]],
        total_steps: int,
        grad_clips: Sequence[float | None],
        views: Sequence[nn.Module] | None = None,
        dropout_streams: MemberStreams | None = None,
    ) -> None:
        super().__init__()
        self.dropout_streams = dropout_streams
        self.model, self.spec, self.k = model, spec, len(optims)
        self.optim_cfgs, self.total_steps = list(optims), total_steps
        self.grad_clips = [c or None for c in grad_clips]
        self.views = list(views) if views is not None else [model]
        make = (
            LanguageModelMetrics
            if spec.kind == "lm"
            else lambda: ClassificationMetrics(spec.num_classes)
        )
        self.val_metrics = nn.ModuleList(make() for _ in range(self.k))
        self.test_metrics = nn.ModuleList(make() for _ in range(self.k))
        self.monitor, self.mode = MONITOR[spec.kind]
        self.best_val: list[dict[str, float]] = [{} for _ in range(self.k)]
        self.last_val: list[dict[str, float]] = [{} for _ in range(self.k)]
        self.test_results: list[dict[str, float]] = [{} for _ in range(self.k)]
        self._grad_norms: list[torch.Tensor | None] = [None] * self.k  # see GradNormSource
        self._grad_norm_requested = False

    # ---- GradNormSource ----------------------------------------------------------------
    def request_grad_norm(self) -> None:
        """Take the norms on every step, also when there is no clipping to take them."""
        self._grad_norm_requested = True

    @property
    def last_grad_norms(self) -> list[torch.Tensor | None]:
        """Per member, the gradient norm before clipping of the last optimizer step."""
        return self._grad_norms

    @property
    def frozen(self) -> tuple[bool, ...]:
        """Members that take no more updates (diverged); none before the optimizer exists."""
        opt = self.optimizer
        return opt.frozen if opt is not None else (False,) * self.k

    @property
    def optimizer(self) -> PackedAdamW | None:
        trainer = self._trainer
        return trainer.optimizers[0] if trainer is not None and trainer.optimizers else None

    def freeze(self, i: int) -> None:
        """Member i stops training (its updates are masked); the others go on."""
        self.optimizer.freeze(i)

    def on_fit_start(self) -> None:
        # The members' views share the pack's parameters where they live now (Lightning has
        # moved the pack to its device; moving replaces parameter storage).
        if self.k > 1:
            for i, view in enumerate(self.views):
                member_view(self.model, view.to(self.device), i)

    # ---- computation --------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One member's mean cross-entropy (the solo run's loss, op for op)."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> dict[str, Any]:
        x, y = batch
        losses = torch.stack([self.loss(out, y[i]) for i, out in enumerate(self.model(x))])
        if self._is_log_step():
            opt = self.optimizer
            for i in range(self.k):
                self.log(member_key(i, "train/loss"), losses[i], on_step=True, on_epoch=False)
                if opt is not None:
                    # The LR this step's update uses (last_lrs[i] once it is taken): a Python
                    # float, logged as a float64 CPU tensor so that it neither rounds to
                    # float32 nor costs a copy to the device (and the sync that comes with it).
                    lr = torch.tensor(opt.scheduled_lr(i), dtype=torch.float64)
                    self.log(member_key(i, "train/lr"), lr, on_step=True, on_epoch=False)
        # Members are independent: the gradient of the sum is each member's own gradient.
        return {"loss": losses.sum(), "member_losses": losses.detach()}

    def _is_log_step(self) -> bool:
        # The loggers only write on every log_every_n_steps-th step; self.log costs ~1 ms of
        # Python, so it is skipped on the steps whose value would be overwritten unwritten.
        trainer = self._trainer  # None when called outside a fit (tests, probes)
        every = trainer.log_every_n_steps if trainer is not None else 0
        return every > 0 and (self.global_step + 1) % every == 0

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], metrics: nn.ModuleList) -> None:
        x, y = batch  # one evaluation batch, shared by every member
        logits = self.model(x.unsqueeze(0).expand(self.k, *x.shape))
        for i, m in enumerate(metrics):
            out = logits[i]
            m.update(out.reshape(-1, out.shape[-1]), y.reshape(-1), self.loss(out, y))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self._eval_step(batch, self.val_metrics)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self._eval_step(batch, self.test_metrics)

    def on_validation_epoch_end(self) -> None:
        frozen = self.frozen
        for i, metrics in enumerate(self.val_metrics):
            results = metrics.compute()
            metrics.reset()
            if self.trainer.sanity_checking or frozen[i]:  # a diverged member's run has ended
                continue
            self.last_val[i] = results
            value, best = results[self.monitor], self.best_val[i].get(self.monitor)
            if best is None or (value > best if self.mode == "max" else value < best):
                self.best_val[i] = {**results, "step": self.global_step}
            self.log_dict(member_metrics(i, {f"val/{k}": v for k, v in results.items()}))

    def on_test_epoch_end(self) -> None:
        for i, metrics in enumerate(self.test_metrics):
            self.test_results[i] = metrics.compute()
            metrics.reset()
            values = {f"test/{k}": v for k, v in self.test_results[i].items()}
            self.log_dict(member_metrics(i, values))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Clipped here rather than by the Trainer: per member, and Lightning refuses to clip
        # for fused AdamW even under bf16, where no gradient scaler is involved. Callbacks
        # (the stability monitor) run this hook first, so they see the norms before clipping.
        if not (any(self.grad_clips) or self._grad_norm_requested):
            return
        active = [not f for f in self.frozen]
        self._grad_norms = clip_member_grads_(self.model.parameters(), self.grad_clips, active)

    def configure_optimizers(self) -> PackedAdamW:
        return PackedAdamW.from_member_configs(
            self.model.parameters(), self.optim_cfgs, total_steps=self.total_steps
        )

    # best and last validation and the dropout streams survive a resume through the checkpoint
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["resnorm"] = {"best_val": self.best_val, "last_val": self.last_val}
        if self.dropout_streams is not None:
            checkpoint["resnorm"]["dropout_streams"] = self.dropout_streams.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("resnorm", {})
        self.best_val = state.get("best_val", [{} for _ in range(self.k)])
        self.last_val = state.get("last_val", [{} for _ in range(self.k)])
        if self.dropout_streams is not None and state.get("dropout_streams"):
            self.dropout_streams.load_state_dict(state["dropout_streams"])
