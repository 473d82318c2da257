"""The gradient of each layer's FFN second weight W² at initialisation (Xiong et al. 2020).

Models, data and loss are the harness's own: the config is composed from conf/ (task
``nlp_charlm``), the model built as a training run builds it (``build_members``: seeded,
with any data-dependent init), the batches are the first training batches that a run with
that seed would see, and the loss is ``TaskModule.loss`` (token-level cross-entropy).
Nothing is updated: the gradients are taken with ``torch.autograd.grad`` in eval mode.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch import nn

from resnorm.paths import conf_dir
from resnorm.stability.layers import probe_mode
from resnorm.training.builders import build_datamodule
from resnorm.training.fit import build_members
from resnorm.training.module import TaskModule
from resnorm.training.optim import OPTIM_KEYS

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# FeedForward.fc2 (models/feedforward.py) of block l's FFN sublayer: W^{2,l} in the paper
W2_NAME = re.compile(r"^(?:.*\.)?blocks\.(\d+)\.ffn\.(?:.*\.)?fc2\.weight$")
TASK = "nlp_charlm"


def compose_config(
    variant: str, dim: int, depth: int, activation: str, seed: int = 0, heads: int = 4
) -> DictConfig:
    """The ``resnorm train`` config of this setting, composed from the config tree."""
    overrides = [
        f"task={TASK}",
        f"variant={variant}",
        f"model.dim={dim}",
        f"model.heads={heads}",
        f"model.activation={activation}",
        f"model.depth={depth}",
        f"seed={seed}",
        "logger=none",
    ]
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return compose("train", overrides=overrides)


def load_data(cfg: DictConfig) -> Any:
    """The task's data module, set up (embedded data: nothing is downloaded)."""
    dm = build_datamodule(cfg)
    dm.setup("fit")
    return dm


def train_batches(dm: Any, seed: int, n: int) -> list[Batch]:
    """The first ``n`` training batches of a run with ``seed`` (its data order)."""
    saved, dm.seed = dm.seed, seed
    try:
        loader = iter(dm.train_dataloader())
        batches = [next(loader) for _ in range(n)]
    finally:
        dm.seed = saved
    return [(x, y) for x, y, *_ in batches]


def build_at_init(cfg: DictConfig, dm: Any) -> tuple[nn.Module, LossFn]:
    """The model a run with ``cfg`` starts from, and that run's training loss."""
    model, _ = build_members([cfg], dm)
    optim = {key: cfg.optim[key] for key in OPTIM_KEYS}
    module = TaskModule(model, dm.spec, [optim], int(cfg.trainer.max_steps), [cfg.optim.grad_clip])
    return model, lambda x, y: module.loss(model(x), y)


def w2_params(model: nn.Module) -> list[nn.Parameter]:
    """Each layer's W² (shape (members=1, dim, hidden)), input side first."""
    found: dict[int, nn.Parameter] = {}
    for name, p in model.named_parameters():
        if (m := W2_NAME.match(name)) is not None:
            found[int(m.group(1))] = p
    if not found or sorted(found) != list(range(len(found))):
        raise ValueError(
            f"{type(model).__name__}: no FFN second weight per layer "
            f"(blocks.<l>.ffn...fc2.weight) found, got layers {sorted(found)}"
        )
    return [found[i] for i in range(len(found))]


def w2_grad_norms(model: nn.Module, loss_fn: LossFn, batch: Batch) -> list[float]:
    """L2 norm (over the whole tensor) of dLoss/dW^{2,l} for each layer l, on one batch.

    ``.grad`` is left untouched and nothing draws from the global RNG (``probe_mode``).
    """
    params = w2_params(model)
    device = params[0].device
    x, y = (t.to(device) for t in batch)
    with probe_mode(model), torch.enable_grad():
        grads = torch.autograd.grad(loss_fn(x, y), params)
    return torch.stack([g.norm() for g in grads]).cpu().tolist()


def init_profile(cfg: DictConfig, dm: Any, batches: Sequence[Batch]) -> list[float]:
    """Per layer, the W² gradient norm at ``cfg``'s initialisation, mean over ``batches``."""
    model, loss_fn = build_at_init(cfg, dm)
    per_batch = torch.tensor([w2_grad_norms(model, loss_fn, b) for b in batches])
    return per_batch.mean(dim=0).tolist()
