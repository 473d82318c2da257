"""The per-step judgement of a run: loss and gradient norm -> divergence, spikes, norm stats.

Each optimizer step queues its (loss, grad norm) pair as device tensors; ``judge`` moves
the queue to the host in one transfer and feeds the divergence monitor and the spike
detector in step order. How often that happens (every step on CPU, every k steps on an
accelerator) is the caller's schedule; nothing here knows about Lightning.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from resnorm.stability.divergence import DivergenceMonitor, SpikeDetector


@dataclass
class GradNormStats:
    """Running max, sum, count and last value of the finite global gradient norms."""

    max: float = 0.0
    sum: float = 0.0
    count: int = 0
    last: float | None = None

    def add(self, norm: float) -> None:
        self.max, self.sum, self.last = max(self.max, norm), self.sum + norm, norm
        self.count += 1

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None


class StepMonitor:
    """Divergence, loss spikes and gradient-norm statistics over the optimizer steps."""

    def __init__(
        self,
        divergence_loss_multiple: float | None = 3.0,
        divergence_smoothing: float = 0.9,
        spike_multiple: float = 2.0,
        spike_window: int = 50,
        spike_min_history: int = 10,
        spike_min_rise: float = 0.1,
    ) -> None:
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
        self.grad = GradNormStats()
        self.pending: list[tuple[int, torch.Tensor, torch.Tensor | None]] = []
        self._window_max = 0.0  # the largest norm since the metrics were last taken

    @property
    def diverged(self) -> bool:
        return self.divergence.diverged

    @property
    def diverged_at_step(self) -> int | None:
        return self.divergence.diverged_at_step

    def add(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor | None) -> None:
        """Queue one step's loss and global gradient norm (None: unknown); no host sync."""
        self.pending.append((step, loss.detach(), grad_norm))

    def judge(self) -> int | None:
        """Judge the queued steps in order (one host transfer); the last one's step, or
        None when nothing was queued. Judging stops at the step that diverged."""
        if not self.pending:
            return None
        pending, self.pending = self.pending, []
        has_norm = [n is not None for _, _, n in pending]
        values = _to_host([(loss, loss if n is None else n) for _, loss, n in pending])
        for (step, _, _), (loss, norm), known in zip(pending, values, has_norm, strict=True):
            norm = norm if known else None
            if norm is not None and math.isfinite(norm):
                self.grad.add(norm)
                self._window_max = max(self._window_max, norm)
            self.spikes.update(step, loss)
            if self.divergence.update(step, loss, norm):
                break
        return pending[-1][0]

    def metrics(self, stopping: bool) -> dict[str, float]:
        """The scalars to log now: spike count, the last norm and the max since the previous
        call, the smoothed loss, and the divergence step when the run is ``stopping``."""
        out = {"stability/spike_count": float(self.spikes.count)}
        if self.grad.last is not None:
            out["stability/grad_norm"] = self.grad.last
            out["stability/grad_norm_max"] = self._window_max
            self._window_max = 0.0
        if self.divergence.smoothed_loss is not None:
            out["stability/loss_smoothed"] = self.divergence.smoothed_loss
        if stopping:
            out["stability/diverged_at_step"] = float(self.diverged_at_step)
        return out

    # ---- resume (plain Python values: checkpoints load with weights_only=True) ----------
    def state_dict(self) -> dict[str, Any]:
        return {
            "divergence": self.divergence.state_dict(),
            "spikes": self.spikes.state_dict(),
            "grad": asdict(self.grad),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.divergence.load_state_dict(state["divergence"])
        self.spikes.load_state_dict(state["spikes"])
        self.grad = GradNormStats(**state["grad"])


def _to_host(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> list[list[float]]:
    """(loss, norm) scalar tensors as floats: one transfer from an accelerator; on the CPU
    ``.item()`` copies nothing and skips the stacking."""
    if pairs[0][0].device.type == "cpu":
        return [[loss.item(), norm.item()] for loss, norm in pairs]
    stacked = torch.stack([torch.stack([loss.float(), norm.float()]) for loss, norm in pairs])
    return stacked.cpu().tolist()
