"""Task models: an embedding, learned positions, the Encoder, and a linear head.

Each takes the encoder's options as one ``BlockConfig`` (``config=``) or as its fields, and
``members=k`` to pack k runs (models/members.py): inputs and outputs then carry the member
dimension first, (k, B, ...) -> (k, B, ...). A model of one member also takes a plain
(B, ...) batch and returns (B, ...).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from resnorm.models.config import BlockConfig
from resnorm.models.embeddings import TokenEmbed
from resnorm.models.encoder import Encoder
from resnorm.models.layers import Linear


def block_config(config: BlockConfig | None, options: dict[str, Any]) -> BlockConfig:
    if config is None:
        return BlockConfig(**options)
    if options:
        raise TypeError("pass the encoder's options either as config= or as fields, not both")
    return config


def packed_input(x: torch.Tensor, input_ndim: int, members: int) -> tuple[torch.Tensor, bool]:
    """``x`` with its member dimension first, and whether the caller passed it so."""
    if x.ndim == input_ndim + 1:
        if x.shape[0] != members:
            raise ValueError(f"a pack of {members} members got inputs of shape {tuple(x.shape)}")
        return x, True
    if x.ndim == input_ndim and members == 1:
        return x.unsqueeze(0), False
    raise ValueError(
        f"expected inputs of {input_ndim} dims (one member) or {input_ndim + 1} (members "
        f"first) for a pack of {members}, got shape {tuple(x.shape)}"
    )


class Classifier(nn.Module):
    """Sequence classifier (ViT, keyword spotting, ListOps, text).

    ``pool='cls'`` prepends a learned class token and reads it out (ViT); ``'mean'``
    averages the tokens. ``embed`` is built with the same ``members``.
    """

    def __init__(
        self,
        embed: nn.Module,
        num_classes: int,
        pool: str = "cls",
        config: BlockConfig | None = None,
        members: int = 1,
        **encoder: Any,
    ) -> None:
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"task.pool={pool!r} is not a valid choice; allowed: cls, mean")
        if getattr(embed, "members", 1) != members:
            raise ValueError(f"the embedding has {embed.members} members, the model {members}")
        self.embed = embed
        self.members = members
        self.encoder = Encoder(block_config(config, encoder), members=members)
        dim = self.encoder.dim
        self.pool = pool
        extra = 1 if pool == "cls" else 0
        self.cls_token = nn.Parameter(torch.zeros(members, 1, 1, dim)) if extra else None
        self.pos = nn.Parameter(torch.randn(members, 1, embed.num_tokens + extra, dim) * 0.02)
        self.head = Linear(dim, num_classes, members=members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, packed = packed_input(x, self.embed.input_ndim, self.members)
        h = self.embed(x)  # (k, B, T, dim)
        if self.cls_token is not None:
            h = torch.cat([self.cls_token.expand(-1, h.shape[1], -1, -1), h], dim=2)
        h = self.encoder(h + self.pos[:, :, : h.shape[2]])
        out = self.head(h[:, :, 0] if self.pool == "cls" else h.mean(dim=2))
        return out if packed else out[0]


class LanguageModel(nn.Module):
    """Causal next-token model: (B, T) tokens -> (B, T, vocab) logits."""

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        config: BlockConfig | None = None,
        members: int = 1,
        **encoder: Any,
    ) -> None:
        super().__init__()
        self.members = members
        cfg = replace(block_config(config, encoder), causal=True)
        self.encoder = Encoder(cfg, members=members)
        dim = self.encoder.dim
        # built after the encoder, as before: the same random draws give the same init
        self.embed = TokenEmbed(vocab_size, seq_len, dim, members=members)
        self.pos = nn.Parameter(torch.randn(members, 1, seq_len, dim) * 0.02)
        self.head = Linear(dim, vocab_size, members=members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, packed = packed_input(x, TokenEmbed.input_ndim, self.members)
        out = self.head(self.encoder(self.embed(x) + self.pos[:, :, : x.shape[2]]))
        return out if packed else out[0]
