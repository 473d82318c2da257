"""The stability probes of a pack's members, run on the schedule the callback sets.

Each member is probed through its view (``TaskModule.views[i]``: a members=1 model sharing
the member's parameters), so the probe functions of ``resnorm.stability`` run unchanged;
a LightningModule that is no pack is probed through its ``model``. Inputs of a view carry
a member dimension of one.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from resnorm.models.members import share_member_grads
from resnorm.stability import (
    ProbeLog,
    full_probe,
    layer_grad_norms,
    snapshot_block_params,
    step_probe,
)


def _packed(pl_module: pl.LightningModule) -> bool:
    return hasattr(pl_module, "views")


def member_model(pl_module: pl.LightningModule, i: int) -> torch.nn.Module:
    return pl_module.views[i] if _packed(pl_module) else pl_module.model


class MemberProbes:
    """Per member: the full probe (init, end) and the periodic one around an update."""

    def __init__(self, logs: list[ProbeLog]) -> None:
        self.logs = logs
        self.batch: tuple[torch.Tensor, ...] | None = None
        self._layer_grads: dict[int, dict[str, list[float]]] = {}
        self._snapshots: dict[int, list[list[torch.Tensor]]] = {}

    @property
    def enabled(self) -> bool:
        return self.logs[0].enabled

    def due(self, step: int) -> bool:
        return self.logs[0].due(step)

    def pick_batch(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, train_batch: Any
    ) -> None:
        """The first examples of the validation split (the same for every run of a study);
        the first member's first training batch when there is no validation split."""
        batch = tuple(t[0] for t in train_batch) if _packed(pl_module) else train_batch
        dm = trainer.datamodule
        if dm is not None and hasattr(dm, "val_dataloader"):
            no_split = (StopIteration, NotImplementedError, KeyError, MisconfigurationException)
            with contextlib.suppress(*no_split):
                batch = next(iter(dm.val_dataloader()))
        size = self.logs[0].batch_size
        self.batch = tuple(t[:size].detach().to(pl_module.device) for t in batch)

    def _inputs(self, pl_module: pl.LightningModule) -> torch.Tensor:
        x = self.batch[0]
        return x.unsqueeze(0) if _packed(pl_module) else x

    def full(self, pl_module: pl.LightningModule, i: int, step: int) -> dict[str, Any]:
        """Gradient profile and forward probe of member i on the fixed batch."""
        t0 = time.perf_counter()
        packed = _packed(pl_module)

        def loss_fn(model: torch.nn.Module, batch: Any) -> torch.Tensor:
            out = model(batch[0])
            return pl_module.loss(out[0] if packed else out, batch[1])

        batch = (self._inputs(pl_module), *self.batch[1:])
        record = full_probe(member_model(pl_module, i), loss_fn, batch, step)
        self.logs[i].seconds += time.perf_counter() - t0
        return record

    def before_update(self, pl_module: pl.LightningModule, members: list[int]) -> None:
        """The training batch's per-layer gradients and the weights before the update."""
        for i in members:
            t0 = time.perf_counter()
            view = member_model(pl_module, i)
            if getattr(pl_module, "k", 1) > 1:  # the view reads member i's gradients
                share_member_grads(pl_module.model, view, i)
            self._layer_grads[i] = layer_grad_norms(view)
            self._snapshots[i] = snapshot_block_params(view)
            self.logs[i].seconds += time.perf_counter() - t0

    def after_update(self, pl_module: pl.LightningModule, i: int, step: int) -> dict | None:
        """Member i's periodic record (None when no probe was due), kept in its history."""
        if i not in self._snapshots:
            return None
        t0 = time.perf_counter()
        view, inputs = member_model(pl_module, i), self._inputs(pl_module)
        record = step_probe(view, inputs, step, self._layer_grads.pop(i), self._snapshots.pop(i))
        self.logs[i].history.append(record)
        self.logs[i].seconds += time.perf_counter() - t0
        return record

    def clear(self) -> None:
        self._layer_grads.clear()
        self._snapshots.clear()
