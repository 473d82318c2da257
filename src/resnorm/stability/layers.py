"""Finding the Transformer blocks of a model, and probing it without disturbing training."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from resnorm.models.attention import Attention
from resnorm.models.block import Block

SUBLAYER_NAMES = ("attn", "ffn")


def find_blocks(model: nn.Module) -> list[Block]:
    """The model's Blocks, input side first (registration order is stack order)."""
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    if not blocks:
        raise ValueError(f"{type(model).__name__} holds no resnorm Block to probe")
    return blocks


def block_attention(block: Block) -> Attention:
    """The attention module inside a block's attention sublayer."""
    return block.attention


def sublayer_params(block: Block) -> dict[str, list[nn.Parameter]]:
    """Trainable parameters of each sublayer (its F, its norms and its residual scale)."""
    return {name: [p for p in getattr(block, name).parameters() if p.requires_grad]
            for name in SUBLAYER_NAMES}  # fmt: skip


def params_finite(model: nn.Module) -> bool:
    """Whether every parameter is finite: a diverged model is only evaluated if so."""
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


@contextmanager
def probe_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) under a forked RNG; every module's own mode is restored after.

    Probes must not change training: they draw no random numbers from the training
    stream and leave each module in the mode it was in (not just the root's).
    """
    modes = [(m, m.training) for m in model.modules()]
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=cuda):
        model.eval()
        try:
            yield
        finally:
            for m, mode in modes:
                m.training = mode
