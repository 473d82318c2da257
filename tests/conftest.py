"""Shared fixtures: a Hydra-composed config exactly as `resnorm train` would build it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

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


def rounding_tol(reference: Any, ulps: float, dtype: Any = None) -> dict[str, float]:
    """``atol``/``rtol`` for assert_close between two computations of the same math that
    round differently: another order of summation (the thread count a busy machine gives
    a reduction, a batched matmul for a loop, a fused kernel) or another precision.

    Reordered sums differ by units of rounding of the largest terms, not of each result:
    an element near zero in a tensor of O(1) values is off by ~eps·O(1). So the bound is
    absolute: ``ulps`` machine epsilons of ``dtype`` (float32 by default) times the
    reference's largest magnitude; ``ulps`` covers the reduction lengths and the layers an
    error crosses. A real error (a wrong term, a perturbed weight) lands far above it.
    """
    import torch  # here: most test modules never load torch

    scale = torch.as_tensor(reference).detach().abs().max().item()
    eps = torch.finfo(dtype or torch.float32).eps
    return {"atol": ulps * eps * scale, "rtol": 0.0}


def wait_for(predicate: Callable[[], bool], proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """Poll ``predicate`` while the run in ``proc`` goes on; fail if the run ends first."""
    end = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before the condition held")
        if time.time() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)
