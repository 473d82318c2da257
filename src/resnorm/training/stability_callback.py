"""When the stability probes run during training, and where their results go.

Every step: the global gradient norm (before clipping) and the loss feed the
divergence monitor and spike detector. On an accelerator these values stay on the
device and are moved to the host together every ``check_every`` steps (one sync per
k steps instead of one per step); on CPU a transfer is free and every step is checked,
so a diverged run stops at the step it diverged.

Every ``probe_every`` steps: per-layer / per-sublayer gradient norms of the training
batch, the update-to-weight ratio of that step, and a forward probe on a fixed batch
(rank collapse, residual RMS, attention entropy and max logit). At initialisation
(before any optimizer step) and at the end, the per-layer gradient profile and the
forward probe on the fixed batch go to ``stability.json``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from resnorm.outputs import STABILITY, write_json_atomic
from resnorm.stability import (
    DivergenceMonitor,
    SpikeDetector,
    check_stability_options,
    forward_probe,
    global_grad_norm,
    grad_norm_profile,
    layer_grad_norms,
    snapshot_block_params,
    update_to_weight_ratio,
)

STABILITY_SCHEMA = 1
ACCELERATOR_CHECK_EVERY = 16  # check_every=null on a GPU: one host sync per 16 steps


class StabilityCallback(pl.Callback):
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
        self.probes, self.probe_every, self.probe_batch_size = probes, probe_every, probe_batch_size
        self.check_every = check_every
        self.divergence = DivergenceMonitor(divergence_loss_multiple, divergence_smoothing)
        self.spikes = SpikeDetector(spike_multiple, spike_window, spike_min_history, spike_min_rise)
        self.thresholds = {
            "divergence_loss_multiple": divergence_loss_multiple,
            "divergence_smoothing": divergence_smoothing,
            "spike_multiple": spike_multiple,
            "spike_window": spike_window,
            "spike_min_history": spike_min_history,
            "spike_min_rise": spike_min_rise,
        }
        self.init: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.grad = {"max": 0.0, "sum": 0.0, "count": 0, "last": None}
        self.probe_seconds = 0.0
        self._pending: list[tuple[int, torch.Tensor, torch.Tensor | None]] = []
        self._grad_norm: torch.Tensor | None = None
        self._module_norm = False
        self._layer_grads: dict[str, list[float]] | None = None
        self._snapshot: list[list[torch.Tensor]] | None = None
        self._probe_batch: tuple[torch.Tensor, ...] | None = None
        self._last_step, self._last_logged, self._window_max = -1, 0, 0.0

    @property
    def diverged(self) -> bool:
        return self.divergence.diverged

    @property
    def diverged_at_step(self) -> int | None:
        return self.divergence.diverged_at_step

    # ---- schedule -------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after a resume, log on the same step grid as an uninterrupted run
        self._last_logged = trainer.global_step

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A module that reports its pre-clipping norm (TaskModule) saves a second norm per step.
        self._module_norm = hasattr(pl_module, "track_grad_norm")
        if self._module_norm:
            pl_module.track_grad_norm = True
        if self.check_every is None:
            on_cpu = pl_module.device.type == "cpu"
            self.check_every = 1 if on_cpu else ACCELERATOR_CHECK_EVERY

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self.probes:
            return
        if self._probe_batch is None:
            self._probe_batch = self._pick_probe_batch(trainer, pl_module, batch)
        if self.init is None and trainer.global_step == 0:
            self.init = self._full_probe(pl_module, step=0)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        if not self._module_norm:  # callbacks run before the module clips; stays on device
            self._grad_norm = global_grad_norm(pl_module)
        if self._is_probe_step(trainer.global_step + 1):
            t0 = time.perf_counter()
            self._layer_grads = layer_grad_norms(pl_module)
            self._snapshot = snapshot_block_params(pl_module)
            self.probe_seconds += time.perf_counter() - t0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        step = trainer.global_step
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if step == self._last_step or loss is None:  # no optimizer step was taken
            return
        self._last_step = step
        norm = pl_module.grad_norm if self._module_norm else self._grad_norm
        self._pending.append((step, loss.detach(), norm))
        self._grad_norm = None
        if len(self._pending) >= self.check_every or step >= trainer.max_steps:
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
        if self.probes and self._probe_batch is not None:
            self.final = self._full_probe(pl_module, step=trainer.global_step)

    # ---- per-step checks ------------------------------------------------------------
    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Move the pending (loss, grad norm) pairs to the host in one transfer and judge them."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        has_norm = [n is not None for _, _, n in pending]
        values = _to_host([(loss, loss if n is None else n) for _, loss, n in pending])
        for (step, _, _), (loss, norm), known in zip(pending, values, has_norm, strict=True):
            norm = norm if known else None
            if norm is not None and math.isfinite(norm):
                g = self.grad
                g["max"], g["sum"], g["last"] = max(g["max"], norm), g["sum"] + norm, norm
                g["count"] += 1
                self._window_max = max(self._window_max, norm)
            self.spikes.update(step, loss)
            if self.divergence.update(step, loss, norm):
                break
        step = pending[-1][0]
        stop = trainer.strategy.reduce_boolean_decision(self.diverged, all=False)
        if stop and not self.diverged:
            self.divergence.trip(step, "diverged_on_another_rank")
        if stop:
            trainer.should_stop = True
            self._mark_wandb(trainer)
        every = trainer.log_every_n_steps
        if stop or step // every > self._last_logged // every:
            self._last_logged = step
            metrics = {"stability/spike_count": float(self.spikes.count)}
            if self.grad["last"] is not None:  # the last step's norm, and the max since last logged
                metrics["stability/grad_norm"] = self.grad["last"]
                metrics["stability/grad_norm_max"] = self._window_max
                self._window_max = 0.0
            if self.divergence.smoothed_loss is not None:
                metrics["stability/loss_smoothed"] = self.divergence.smoothed_loss
            if stop:
                metrics["stability/diverged_at_step"] = float(self.diverged_at_step)
            self._log(trainer, metrics, step)

    @rank_zero_only
    def _mark_wandb(self, trainer: pl.Trainer) -> None:
        """Mark the W&B run at once; the run itself is finished by run.py."""
        if "wandb" not in sys.modules:
            return
        from pytorch_lightning.loggers import WandbLogger

        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                lg.experiment.summary.update(
                    {"status": "diverged", "diverged_at_step": self.diverged_at_step}
                )

    # ---- probes ---------------------------------------------------------------------
    def _is_probe_step(self, step: int) -> bool:
        return self.probes and step % self.probe_every == 0

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
        return tuple(t[: self.probe_batch_size].detach().to(pl_module.device) for t in batch)

    @staticmethod
    def _loss(pl_module: pl.LightningModule) -> Callable[[torch.nn.Module, Any], torch.Tensor]:
        return lambda model, batch: pl_module.loss(model(batch[0]), batch[1])

    def _full_probe(self, pl_module: pl.LightningModule, step: int) -> dict[str, Any]:
        """Gradient profile and forward probe on the fixed batch (init and end of training)."""
        t0 = time.perf_counter()
        model = pl_module.model
        profile = grad_norm_profile(model, self._loss(pl_module), self._probe_batch)
        loss = profile.pop("loss")
        record = {"step": step, "loss": loss, "grad_norm": profile}
        record.update(forward_probe(model, self._probe_batch[0]))
        self.probe_seconds += time.perf_counter() - t0
        return record

    def _probe(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> None:
        t0 = time.perf_counter()
        model = pl_module.model
        record = {"step": step, "grad_norm": self._layer_grads,
                  "update_ratio": update_to_weight_ratio(model, self._snapshot)}  # fmt: skip
        record.update(forward_probe(model, self._probe_batch[0]))
        self.history.append(record)
        self._log(trainer, probe_metrics(record), step)
        self.probe_seconds += time.perf_counter() - t0

    @staticmethod
    def _log(trainer: pl.Trainer, metrics: dict[str, float], step: int) -> None:
        for lg in trainer.loggers:
            lg.log_metrics(metrics, step=step)

    # ---- results --------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Scalars for summary.json["stability"]."""
        g, d = self.grad, self.divergence
        out: dict[str, Any] = {
            "diverged": self.diverged,
            "diverged_at_step": d.diverged_at_step,
            "divergence_reason": d.reason,
            "initial_loss": d.initial_loss,
            "smoothed_loss": d.smoothed_loss,
            "spike_count": self.spikes.count,
            "first_spike_step": self.spikes.steps[0] if self.spikes.steps else None,
            "grad_norm_max": g["max"] if g["count"] else None,
            "grad_norm_mean": g["sum"] / g["count"] if g["count"] else None,
            "grad_norm_last": g["last"],
            "probes": self.probes,
            "probe_every": self.probe_every,
            "probe_count": len(self.history),
            "probe_wall_s": self.probe_seconds,
        }
        ratios = [r for rec in self.history for r in rec["update_ratio"]]
        out["update_ratio_max"] = max(ratios) if ratios else None
        for phase, rec in (("init", self.init), ("final", self.final)):
            if rec is not None:
                out.update(phase_scalars(rec, phase))
        return out

    def report(self) -> dict[str, Any]:
        """The content of stability.json: per-layer arrays at init, during, and at the end."""
        probe = self.init or self.final or {}
        return {
            "schema": STABILITY_SCHEMA,
            "depth": len(probe.get("token_cosine", [])) or None,
            "heads": len(probe["attn_entropy"][0]) if probe else None,
            "probe_every": self.probe_every if self.probes else None,
            "probe_batch_size": self.probe_batch_size,
            "thresholds": self.thresholds,
            "divergence": {
                "diverged": self.diverged,
                "step": self.diverged_at_step,
                "reason": self.divergence.reason,
                "initial_loss": self.divergence.initial_loss,
            },
            "loss_spikes": {"count": self.spikes.count, "steps": self.spikes.steps},
            "init": self.init,
            "final": self.final,
            "history": self.history,
        }

    def record(self, summary: dict[str, Any], run_dir: str | Path) -> None:
        """Write summary["stability"] and <run_dir>/stability.json."""
        summary["stability"] = self.summary()
        write_json_atomic(Path(run_dir) / STABILITY, self.report())

    # ---- resume ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "divergence": self.divergence.state_dict(), "spikes": self.spikes.state_dict(),
            "init": self.init, "history": self.history, "grad": dict(self.grad),
            "probe_seconds": self.probe_seconds,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.divergence.load_state_dict(state["divergence"])
        self.spikes.load_state_dict(state["spikes"])
        self.init, self.history = state["init"], list(state["history"])
        self.grad, self.probe_seconds = dict(state["grad"]), float(state["probe_seconds"])


def _to_host(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> list[list[float]]:
    """(loss, norm) scalar tensors as floats: one transfer from an accelerator; on the CPU
    ``.item()`` copies nothing and skips the stacking."""
    if pairs[0][0].device.type == "cpu":
        return [[loss.item(), norm.item()] for loss, norm in pairs]
    stacked = torch.stack([torch.stack([loss.float(), norm.float()]) for loss, norm in pairs])
    return stacked.cpu().tolist()


def phase_scalars(record: dict[str, Any], phase: str) -> dict[str, float]:
    """A few headline numbers from a full probe: the Xiong et al. gradient ratio, the last
    layer's token similarity and stream scale, the attention extremes."""
    ffn = record["grad_norm"]["ffn"]
    return {
        f"{phase}_grad_ffn_last_over_first": ffn[-1] / ffn[0] if ffn[0] else math.nan,
        f"{phase}_token_cosine_last": record["token_cosine"][-1],
        f"{phase}_residual_rms_last": record["residual_rms"][-1],
        f"{phase}_attn_entropy_min": min(min(h) for h in record["attn_entropy"]),
        f"{phase}_attn_max_logit": max(max(h) for h in record["attn_max_logit"]),
    }


def probe_metrics(record: dict[str, Any]) -> dict[str, float]:
    """Per-layer scalars for the loggers (heads reduced: mean entropy, max logit)."""
    out: dict[str, float] = {}
    per_layer = {
        "grad_norm_attn": record["grad_norm"]["attn"],
        "grad_norm_ffn": record["grad_norm"]["ffn"],
        "update_ratio": record["update_ratio"],
        "token_cosine": record["token_cosine"],
        "residual_rms": record["residual_rms"],
        "attn_entropy": [sum(h) / len(h) for h in record["attn_entropy"]],
        "attn_max_logit": [max(h) for h in record["attn_max_logit"]],
    }
    for name, values in per_layer.items():
        for i, v in enumerate(values):
            out[f"stability/{name}/layer{i:02d}"] = v
    return out


def build_stability_callback(cfg: DictConfig) -> StabilityCallback | None:
    """The callback from ``cfg.stability``; None when ``stability.enabled=false``."""
    s = cfg.get("stability")
    if s is None or not s.enabled:
        return None
    return StabilityCallback(**check_stability_options(s))
