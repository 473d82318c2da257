"""Shared fixtures: a Hydra-composed config exactly as `resnorm train` would build it."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from resnorm.paths import conf_dir

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    def make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
            return compose(config_name="train", overrides=list(overrides))

    return make
