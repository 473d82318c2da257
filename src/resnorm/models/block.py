"""The Transformer block: an attention sublayer then an FFN sublayer, each wrapped alike."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from resnorm.models.attention import Attention
from resnorm.models.norms import NORMS, build_norm
from resnorm.models.registry import Registry
from resnorm.models.residual import RESIDUALS
from resnorm.models.sublayer import SUBLAYERS

ACTIVATIONS: Registry[type[nn.Module]] = Registry("model.activation")
ACTIVATIONS.register("gelu")(nn.GELU)
ACTIVATIONS.register("relu")(nn.ReLU)
ACTIVATIONS.register("silu")(nn.SiLU)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = ACTIVATIONS.get(activation)()
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


def check_block_options(
    *,
    dim: int,
    depth: int,
    heads: int,
    ffn_mult: float,
    residual: str,
    norm_position: str,
    norm: str,
    norm_eps: float,
    dropout: float,
    activation: str,
) -> None:
    """Fail at construction, naming the option and what it allows."""
    RESIDUALS.get(residual)
    SUBLAYERS.get(norm_position)
    NORMS.get(norm)
    ACTIVATIONS.get(activation)
    for name, value in (("model.dim", dim), ("model.depth", depth), ("model.heads", heads)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")
    if dim % heads:
        raise ValueError(f"model.heads={heads} must divide model.dim={dim}")
    if not ffn_mult > 0 or int(dim * ffn_mult) < 1:
        raise ValueError(f"model.ffn_mult={ffn_mult!r} must be positive")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"model.dropout={dropout!r} must be in [0, 1)")
    if not norm_eps > 0:
        raise ValueError(f"model.norm_eps={norm_eps!r} must be positive")
    if residual == "deepnorm" and norm_position != "post":
        raise ValueError(
            f"model.residual=deepnorm requires model.norm_position=post (got {norm_position!r}); "
            "allowed: post"
        )


class Block(nn.Module):
    """timm-style block: the norm, residual mode and norm position are injected by name."""

    def __init__(
        self,
        dim: int,
        heads: int,
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
        depth: int = 1,
    ) -> None:
        super().__init__()
        check_block_options(
            dim=dim, depth=depth, heads=heads, ffn_mult=ffn_mult, residual=residual,
            norm_position=norm_position, norm=norm, norm_eps=norm_eps, dropout=dropout,
            activation=activation,
        )  # fmt: skip
        make_norm = partial(build_norm, norm, dim, norm_eps)
        make_skip = partial(RESIDUALS.get(residual), dim, depth, layerscale_init=layerscale_init)
        position = SUBLAYERS.get(norm_position)
        attn = Attention(dim, heads, dropout, causal, attn_scale, qk_norm, norm_eps)
        ffn = FeedForward(dim, int(dim * ffn_mult), activation, dropout)
        self.attn = position(attn, make_skip(), make_norm)
        self.ffn = position(ffn, make_skip(), make_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.attn(x))
