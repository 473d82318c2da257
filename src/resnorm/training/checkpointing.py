"""The checkpoint and progress-bar options of ``cfg.trainer``, checked before Lightning loads.

A run writes ``checkpoints/last.ckpt`` every ``trainer.ckpt_every`` optimizer steps (0: not
by steps), at least every ``trainer.ckpt_minutes`` minutes of training (0 or null: not by
time) and at the end of its fit, so a killed run loses at most that much training.
``trainer.progress`` shows a bar over the training steps: ``auto`` when stdout is a
terminal, ``true`` always, ``false`` never.
"""

from __future__ import annotations

import math
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_checkpoint_options(trainer_cfg: Any) -> None:
    """Raise ValueError naming the first bad checkpoint or progress-bar option."""
    every = trainer_cfg.get("ckpt_every", 0)
    if not isinstance(every, int) or isinstance(every, bool) or every < 0:
        raise ValueError(f"trainer.ckpt_every={every!r} must be a non-negative integer")
    minutes = trainer_cfg.get("ckpt_minutes")
    if minutes is not None and not (_is_number(minutes) and minutes >= 0):
        raise ValueError(f"trainer.ckpt_minutes={minutes!r} must be a non-negative number")
    progress = trainer_cfg.get("progress", "auto")
    if not (isinstance(progress, bool) or progress == "auto"):
        raise ValueError(f"trainer.progress={progress!r} must be one of auto | true | false")


def checkpoint_seconds(trainer_cfg: Any) -> float | None:
    """Seconds of training between timed checkpoints; None when there are none."""
    minutes = trainer_cfg.get("ckpt_minutes")
    return float(minutes) * 60.0 if minutes else None
