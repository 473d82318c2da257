"""Divergence and loss-spike detection over a stream of (step, loss) values.

Pure Python on host floats, so the same logic serves a per-step check on CPU and a
batched check (every k steps, one transfer) on an accelerator.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any


class DivergenceMonitor:
    """Diverged = non-finite loss or gradient, or smoothed loss > ``loss_multiple`` × initial.

    The smoothed loss is a bias-corrected exponential moving average with factor
    ``smoothing`` (0 = the raw loss); the initial loss is the first finite loss seen.
    ``loss_multiple=None`` keeps only the non-finite test.
    """

    def __init__(self, loss_multiple: float | None = 3.0, smoothing: float = 0.9) -> None:
        if loss_multiple is not None and not loss_multiple > 1:
            raise ValueError(f"stability.divergence_loss_multiple={loss_multiple!r} must be > 1")
        if not 0 <= smoothing < 1:
            raise ValueError(f"stability.divergence_smoothing={smoothing!r} must be in [0, 1)")
        self.loss_multiple, self.smoothing = loss_multiple, smoothing
        self.initial_loss: float | None = None
        self._ema, self._n = 0.0, 0
        self.diverged_at_step: int | None = None
        self.reason: str | None = None

    @property
    def diverged(self) -> bool:
        return self.diverged_at_step is not None

    @property
    def smoothed_loss(self) -> float | None:
        return self._ema / (1 - self.smoothing**self._n) if self._n else None

    def update(self, step: int, loss: float, grad_norm: float | None = None) -> bool:
        """Feed one optimizer step; True once the run has diverged (it stays diverged)."""
        if self.diverged:
            return True
        if not math.isfinite(loss):
            return self.trip(step, "nonfinite_loss")
        if grad_norm is not None and not math.isfinite(grad_norm):
            return self.trip(step, "nonfinite_grad")
        if self.initial_loss is None:
            self.initial_loss = loss
        self._n += 1
        self._ema = self.smoothing * self._ema + (1 - self.smoothing) * loss
        limit = None if self.loss_multiple is None else self.loss_multiple * self.initial_loss
        if limit is not None and self.initial_loss > 0 and self.smoothed_loss > limit:
            return self.trip(step, "loss_above_multiple")
        return False

    def trip(self, step: int, reason: str) -> bool:
        """Record divergence at ``step`` for ``reason`` (e.g. seen by another process)."""
        self.diverged_at_step, self.reason = step, reason
        return True

    def state_dict(self) -> dict[str, Any]:
        keys = ("initial_loss", "_ema", "_n", "diverged_at_step", "reason")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


class SpikeDetector:
    """A spike is a step whose loss exceeds ``multiple`` × the median of the previous
    ``window`` losses (once ``min_history`` of them exist) and rises above that median by
    more than ``min_rise`` × the initial loss.

    The second condition keeps batch noise out once the loss is near zero (0.03 after a
    median of 0.01 is 3× but no instability); scaling it by the initial loss (about
    log C for C classes) makes it task-independent. Counts all, keeps the first
    ``max_recorded`` steps.
    """

    def __init__(
        self, multiple: float = 2.0, window: int = 50, min_history: int = 10,
        min_rise: float = 0.1, max_recorded: int = 1000,
    ) -> None:  # fmt: skip
        if not multiple > 1:
            raise ValueError(f"stability.spike_multiple={multiple!r} must be > 1")
        if window < 1 or not 1 <= min_history <= window:
            raise ValueError(
                f"stability.spike_window={window!r} and spike_min_history={min_history!r} "
                "need 1 <= min_history <= window"
            )
        if not min_rise >= 0:
            raise ValueError(f"stability.spike_min_rise={min_rise!r} must be >= 0")
        self.multiple, self.min_history, self.min_rise = multiple, min_history, min_rise
        self.max_recorded = max_recorded
        self.recent: deque[float] = deque(maxlen=window)
        self.initial_loss: float | None = None
        self.count = 0
        self.steps: list[int] = []

    def update(self, step: int, loss: float) -> bool:
        """Feed one step's loss; True when it is a spike. Non-finite losses are left to
        the divergence monitor and not added to the history."""
        if not math.isfinite(loss):
            return False
        if self.initial_loss is None:
            self.initial_loss = loss
        spike = False
        if len(self.recent) >= self.min_history:
            median = statistics.median(self.recent)
            rise = loss - median
            spike = loss > self.multiple * median and rise > self.min_rise * abs(self.initial_loss)
        if spike:
            self.count += 1
            if len(self.steps) < self.max_recorded:
                self.steps.append(step)
        self.recent.append(loss)
        return spike

    def state_dict(self) -> dict[str, Any]:
        return {"recent": list(self.recent), "count": self.count, "steps": list(self.steps),
                "initial_loss": self.initial_loss}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent.clear()
        self.recent.extend(state["recent"])
        self.count, self.steps = int(state["count"]), list(state["steps"])
        self.initial_loss = state.get("initial_loss")
