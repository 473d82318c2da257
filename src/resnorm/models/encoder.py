"""A stack of Blocks: the public ``Encoder`` API (B, T, dim) -> (B, T, dim)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn

from resnorm.models.block import Block
from resnorm.models.config import BlockConfig
from resnorm.models.norms import build_norm
from resnorm.models.sublayer import SUBLAYERS


class Encoder(nn.Module):
    """``Encoder(cfg)`` with a ``BlockConfig``, or ``Encoder(dim=64, depth=6, ...)`` with its
    fields (positionally in field order too). The norm position decides the stack-level
    norms (``final_norm``, ``embed_norm``); the residual mode re-initialises each branch.

    ``Encoder(cfg, members=k)`` packs k copies: x is (k, B, T, dim). With one member x may
    be (B, T, dim) or (1, B, T, dim); the output has the input's shape.
    """

    def __init__(self, *args: Any, members: int = 1, **options: Any) -> None:
        super().__init__()
        if args and isinstance(args[0], BlockConfig):
            if len(args) > 1 or options:
                raise TypeError("Encoder(cfg) takes a BlockConfig and no other options")
            cfg = args[0]
        else:
            cfg = BlockConfig(*args, **options)
        self.config, self.members = cfg, members
        self.dim, self.depth = cfg.dim, cfg.depth
        position = SUBLAYERS.get(cfg.norm_position)
        self.blocks = nn.ModuleList(Block(cfg, members=members) for _ in range(cfg.depth))
        make_norm = partial(build_norm, cfg.norm, cfg.dim, cfg.norm_eps, members=members)
        # Pre-LN-like positions leave the residual stream un-normalized: one final norm.
        self.norm = make_norm() if position.final_norm else nn.Identity()
        self.embed_norm = make_norm() if position.embed_norm else nn.Identity()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases (the setting of Xiong et al. 2020), then
        each residual mode's own branch init (DeepNorm: β-scaled Xavier-normal); member
        after member, each draw on the member's own (out, in) weight."""
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                for w in m.weight:
                    nn.init.xavier_uniform_(w)
                nn.init.zeros_(m.bias)
        for block in self.blocks:
            block.init_branches()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.members > 1 and (x.ndim != 4 or x.shape[0] != self.members):
            raise ValueError(f"a pack of {self.members} takes (members, B, T, dim), got "
                             f"{tuple(x.shape)}")  # fmt: skip
        x = self.embed_norm(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
