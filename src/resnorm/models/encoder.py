"""A stack of Blocks: the public ``Encoder`` API (B, T, dim) -> (B, T, dim)."""

from __future__ import annotations

import torch
from torch import nn

from resnorm.models.block import Block, check_block_options
from resnorm.models.norms import build_norm
from resnorm.models.residual import deepnorm_beta
from resnorm.models.sublayer import FINAL_NORM_POSITIONS


class Encoder(nn.Module):
    def __init__(
        self,
        dim: int = 64,
        depth: int = 6,
        heads: int = 4,
        ffn_mult: float = 4,
        residual: str = "on",
        norm_position: str = "pre",
        norm: str = "layernorm",
        norm_eps: float = 1e-5,
        dropout: float = 0.0,
        causal: bool = False,
        activation: str = "gelu",
        attn_scale: bool = True,
        qk_norm: bool = False,
        layerscale_init: float = 0.1,
    ) -> None:
        super().__init__()
        check_block_options(
            dim=dim, depth=depth, heads=heads, ffn_mult=ffn_mult, residual=residual,
            norm_position=norm_position, norm=norm, norm_eps=norm_eps, dropout=dropout,
            activation=activation,
        )  # fmt: skip
        self.dim, self.depth, self.residual = dim, depth, residual
        self.blocks = nn.ModuleList(
            Block(
                dim,
                heads,
                ffn_mult,
                residual,
                norm_position,
                norm,
                norm_eps,
                dropout,
                causal,
                activation,
                attn_scale,
                qk_norm,
                layerscale_init,
                depth=depth,
            )  # fmt: skip
            for _ in range(depth)
        )
        # Pre-LN (and sandwich) leave the residual stream un-normalized: one final norm.
        final = norm_position in FINAL_NORM_POSITIONS
        self.norm = build_norm(norm, dim, norm_eps) if final else nn.Identity()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases (the setting of Xiong et al. 2020).

        DeepNorm re-initialises the FFN, value and output projections with
        Xavier-normal of gain β = (8L)^-¼, queries and keys with gain 1.
        """
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        if self.residual != "deepnorm":
            return
        beta = deepnorm_beta(self.depth)
        for block in self.blocks:
            attn, ffn = block.attn.fn, block.ffn.fn
            q, k, v = attn.qkv.weight.view(3, self.dim, self.dim)
            nn.init.xavier_normal_(q)
            nn.init.xavier_normal_(k)
            for w in (v, attn.proj.weight, ffn.fc1.weight, ffn.fc2.weight):
                nn.init.xavier_normal_(w, gain=beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
