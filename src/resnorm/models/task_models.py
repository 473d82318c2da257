"""Task models: an embedding, learned positions, the Encoder, and a linear head.

Each takes the encoder's options as one ``BlockConfig`` (``config=``) or as its fields.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from resnorm.models.config import BlockConfig
from resnorm.models.embeddings import TokenEmbed
from resnorm.models.encoder import Encoder


def block_config(config: BlockConfig | None, options: dict[str, Any]) -> BlockConfig:
    if config is None:
        return BlockConfig(**options)
    if options:
        raise TypeError("pass the encoder's options either as config= or as fields, not both")
    return config


class Classifier(nn.Module):
    """Sequence classifier (ViT, keyword spotting, ListOps, text).

    ``pool='cls'`` prepends a learned class token and reads it out (ViT); ``'mean'``
    averages the tokens.
    """

    def __init__(
        self,
        embed: nn.Module,
        num_classes: int,
        pool: str = "cls",
        config: BlockConfig | None = None,
        **encoder: Any,
    ) -> None:
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"task.pool={pool!r} is not a valid choice; allowed: cls, mean")
        self.embed = embed
        self.encoder = Encoder(block_config(config, encoder))
        dim = self.encoder.dim
        self.pool = pool
        extra = 1 if pool == "cls" else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if extra else None
        self.pos = nn.Parameter(torch.randn(1, embed.num_tokens + extra, dim) * 0.02)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        if self.cls_token is not None:
            h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
        h = self.encoder(h + self.pos[:, : h.shape[1]])
        return self.head(h[:, 0] if self.pool == "cls" else h.mean(dim=1))


class LanguageModel(nn.Module):
    """Causal next-token model: (B, T) tokens -> (B, T, vocab) logits."""

    def __init__(
        self, vocab_size: int, seq_len: int, config: BlockConfig | None = None, **encoder: Any
    ) -> None:
        super().__init__()
        self.encoder = Encoder(replace(block_config(config, encoder), causal=True))
        dim = self.encoder.dim
        # built after the encoder, as before: the same random draws give the same init
        self.embed = TokenEmbed(vocab_size, seq_len, dim)
        self.pos = nn.Parameter(torch.randn(1, seq_len, dim) * 0.02)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x) + self.pos[:, : x.shape[1]]))
