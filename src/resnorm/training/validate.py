"""Config checks that run before any data is loaded or Lightning is imported."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from resnorm.jobs.packing import check_pack_size
from resnorm.member_config import MemberConfig
from resnorm.stability.options import check_stability_options
from resnorm.training.builders import block_config
from resnorm.training.checkpointing import check_checkpoint_options
from resnorm.training.no_matplotlib import keep_matplotlib_out

# Every process that trains through the Hydra app (launcher and DDP children included)
# imports this module before Lightning: the earliest point to keep matplotlib out.
keep_matplotlib_out()


def check_trainer(t: DictConfig) -> None:
    """The trainer options Lightning would only trip over once a run is under way."""
    every = t.log_every
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ValueError(f"trainer.log_every={every!r} must be a positive integer")
    if str(t.accelerator) in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"trainer.accelerator={t.accelerator} needs a CUDA device and none is available "
            "(torch.cuda.is_available() is false); use trainer=cpu (or trainer.accelerator=cpu)"
        )


def check_config(cfg: DictConfig) -> None:
    """Raise ValueError naming the first bad option and what it allows."""
    check_pack_size(cfg.get("pack", 1))
    MemberConfig.from_config(cfg)  # seed, optimizer, dropout, thresholds: the record checks
    block_config(cfg.model)  # BlockConfig validates itself when built
    steps = cfg.trainer.max_steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"trainer.max_steps={steps!r} must be a positive integer")
    every = cfg.trainer.val_every
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"trainer.val_every={every!r} must be a positive integer")
    check_checkpoint_options(cfg.trainer)
    check_trainer(cfg.trainer)
    if cfg.get("stability") is not None:
        check_stability_options(cfg.stability)
