"""Optional Lightning callbacks chosen by the config (beyond checkpointing)."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf


def extra_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Callbacks that only some runs need, e.g. Optuna pruning inside a trial."""
    callbacks: list[pl.Callback] = []
    if OmegaConf.select(cfg, "optuna.trial") is not None:
        from resnorm.sweeps.optuna_pruning import OptunaPruningCallback

        callbacks.append(OptunaPruningCallback.from_config(cfg))
    return callbacks
