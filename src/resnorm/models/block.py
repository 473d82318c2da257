"""The Transformer block: an attention sublayer then an FFN sublayer, each wrapped alike."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn

from resnorm.models.attention import Attention
from resnorm.models.config import BlockConfig
from resnorm.models.feedforward import ACTIVATIONS, FeedForward
from resnorm.models.norms import build_norm
from resnorm.models.residual import RESIDUALS
from resnorm.models.sublayer import SUBLAYERS

__all__ = ["ACTIVATIONS", "Block", "FeedForward"]


class Block(nn.Module):
    """timm-style block: the norm, residual mode and norm position are injected by name.

    ``Block(cfg)`` with a validated ``BlockConfig``; ``Block(dim, heads, **options)`` builds
    one (with ``depth=1`` unless given). The block itself does not validate again.
    ``members=k`` builds k packed copies (models/members.py): x is (k, B, T, dim).
    """

    def __init__(self, cfg: BlockConfig | int, heads: int | None = None, *, members: int = 1,
                 **options: Any) -> None:  # fmt: skip
        super().__init__()
        if not isinstance(cfg, BlockConfig):
            cfg = BlockConfig(dim=cfg, heads=heads, **{"depth": 1, **options})
        elif heads is not None or options:
            raise TypeError("Block(cfg) takes a BlockConfig and no other options")
        self.config, self.members = cfg, members
        c = cfg
        make_norm = partial(build_norm, c.norm, c.dim, c.norm_eps, members=members)
        make_skip = partial(RESIDUALS.get(c.residual), c.dim, c.depth,
                            layerscale_init=c.layerscale_init, members=members)  # fmt: skip
        position = SUBLAYERS.get(c.norm_position)
        # construction order fixes the RNG draws of the default inits: attn, ffn, then wrappers
        attn = Attention(c.dim, c.heads, c.dropout, c.causal, c.attn_scale, c.qk_norm, c.norm_eps,
                         members=members)  # fmt: skip
        ffn = FeedForward(c.dim, int(c.dim * c.ffn_mult), c.activation, c.dropout, members)
        self.attn = position(attn, make_skip(), make_norm)
        self.ffn = position(ffn, make_skip(), make_norm)

    @property
    def attention(self) -> Attention:
        """The attention module of the attention sublayer (probes hook it)."""
        return self.attn.fn

    def init_branches(self) -> None:
        """Let the residual mode re-initialise each sublayer, attention first."""
        self.attn.init_branch()
        self.ffn.init_branch()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.attn(x))
