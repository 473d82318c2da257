"""A terminal progress bar over a fit's optimizer steps.

A run trains for ``max_steps`` optimizer steps over many tiny epochs, so Lightning's default
bar, which restarts every epoch, says little. This one spans the whole fit: step/max_steps,
steps/s, the training loss and the time left, on one line of stdout (rank 0 only). It is
drawn at most a few times a second: reading the loss off the device is the only sync it
adds, once per redraw.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks.progress import ProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
    "[{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)


def wants_progress_bar(option: bool | str, stream: Any = None) -> bool:
    """``trainer.progress``: true, false, or auto (a bar when ``stream``, stdout by default,
    is a terminal)."""
    if option == "auto":
        stream = sys.stdout if stream is None else stream
        return bool(getattr(stream, "isatty", lambda: False)())
    return bool(option)


class StepProgressBar(ProgressBar):
    """One bar from the fit's first step (the resumed step after a resume) to ``max_steps``.

    Validation and test passes draw no bar of their own. The loss shown is the last step's
    (a pack's: the mean over its members with a finite loss).
    """

    def __init__(self, min_interval_s: float = 0.25) -> None:
        super().__init__()
        self.min_interval_s = min_interval_s
        self._enabled = True
        self._bar: Tqdm | None = None
        self._drawn_at = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.write(sep.join(map(str, args)), **kwargs)
        else:
            print(*args, sep=sep, **kwargs)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled:
            return
        # a terminal that reports no width (a bare pseudo-terminal) would get an empty line
        fits = _columns(sys.stdout) > 0
        self._bar = Tqdm(
            desc="Training", total=trainer.max_steps, initial=trainer.global_step,
            unit=" steps", file=sys.stdout, dynamic_ncols=fits, ncols=None if fits else 100,
            nrows=None if fits else 24, smoothing=0, leave=True, bar_format=BAR_FORMAT,
        )  # fmt: skip
        self._drawn_at = time.monotonic()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *_: Any
    ) -> None:
        bar = self._bar
        if bar is None:
            return
        now = time.monotonic()
        if now - self._drawn_at < self.min_interval_s and trainer.global_step < bar.total:
            return
        self._drawn_at = now
        loss = _loss(outputs)
        if loss is not None:
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.n = trainer.global_step
        bar.refresh()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is None:
            return
        self._bar.n = trainer.global_step  # short of max_steps when a run stopped early
        self._bar.close()
        self._bar = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, _: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _columns(stream: Any) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def _loss(outputs: Any) -> float | None:
    """The step's loss from ``training_step``'s output; a pack's mean over finite members."""
    if not isinstance(outputs, dict):
        return None
    losses = outputs.get("member_losses", outputs.get("loss"))
    if not isinstance(losses, torch.Tensor):
        return None
    losses = losses.detach().float().reshape(-1)
    finite = losses[torch.isfinite(losses)]
    return float(finite.mean()) if finite.numel() else float(losses[0])
