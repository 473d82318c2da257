"""The checkpoint a run writes (``last.ckpt``) and the one a relaunch resumes from."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

LAST = "last.ckpt"
TIME_CHECK_EVERY = 10  # steps between timed-checkpoint checks when several ranks must agree


class LastCheckpoint(pl.callbacks.ModelCheckpoint):
    """``last.ckpt`` every ``every_steps`` steps, at least every ``seconds`` of training, and
    at the end of the fit, always under that one name.

    Lightning's ModelCheckpoint takes one trigger (steps or time), saves at the end only when
    it saved nothing before, and numbers a ``last`` file it did not write (``last-v1.ckpt``);
    a run needs both triggers, its final state on disk, and the one file a relaunch resumes
    from. A save due on a step that validates waits for that validation: a resume from a
    checkpoint taken before it would never run it.
    """

    def __init__(self, dirpath: str, every_steps: int = 0, seconds: float | None = None) -> None:
        super().__init__(
            dirpath=dirpath, save_last=True, save_top_k=0,
            every_n_train_steps=every_steps or None, enable_version_counter=False,
        )  # fmt: skip
        self.every_steps, self.seconds = every_steps, seconds
        self._time_check_every = 1
        self._pending = self._validated = False  # a save waits / a validation since the last

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        # ranks agree on a timed save through a broadcast, a device sync: not on every step
        self._time_check_every = 1 if trainer.world_size == 1 else TIME_CHECK_EVERY

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        step = trainer.global_step
        due = self.every_steps > 0 and step % self.every_steps == 0
        if not due and self.seconds and step % self._time_check_every == 0:
            late = time.monotonic() - self._last_time_checked >= self.seconds
            due = trainer.strategy.broadcast(late)  # rank 0's clock decides for every rank
        if not due or self._should_skip_saving_checkpoint(trainer):
            return
        # validation every val_check_batch batches, counted across epochs (as build_trainer sets)
        batch = trainer.fit_loop.epoch_loop.total_batch_idx + 1
        if trainer.enable_validation and batch % trainer.val_check_batch == 0:
            self._pending = True
        else:
            self._save_last(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._validated = True
        if self._pending:
            self._save_last(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._validated or self._last_global_step_saved != trainer.global_step:
            self._save_last(trainer)

    def _save_last(self, trainer: pl.Trainer) -> None:
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._last_time_checked = time.monotonic()
        self._pending = self._validated = False


def resume_path(ckpt_dir: str | Path) -> str | None:
    """The checkpoint a relaunch resumes from, or None to start afresh."""
    last = Path(ckpt_dir) / LAST
    return str(last) if last.is_file() else None
