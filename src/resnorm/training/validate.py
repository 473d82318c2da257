"""Config checks that run before any data is loaded or Lightning is imported."""

from __future__ import annotations

from omegaconf import DictConfig

from resnorm.jobs.packing import check_pack_size
from resnorm.stability.options import check_stability_options
from resnorm.training.builders import block_config
from resnorm.training.optim import check_optim_options


def check_config(cfg: DictConfig) -> None:
    """Raise ValueError naming the first bad option and what it allows."""
    check_pack_size(cfg.get("pack", 1))
    block_config(cfg.model)  # BlockConfig validates itself when built
    o = cfg.optim
    check_optim_options(o.lr, o.warmup_steps, o.schedule, o.weight_decay)
    steps = cfg.trainer.max_steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"trainer.max_steps={steps!r} must be a positive integer")
    every = cfg.trainer.val_every
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"trainer.val_every={every!r} must be a positive integer")
    if cfg.get("stability") is not None:
        check_stability_options(cfg.stability)
    if cfg.optim.grad_clip is not None and not cfg.optim.grad_clip > 0:
        raise ValueError(f"optim.grad_clip={cfg.optim.grad_clip!r} must be positive or null")
