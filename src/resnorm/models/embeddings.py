"""Input embeddings that turn each modality into a (members, B, T, dim) token sequence.

Each takes its input with the member dimension first and says, as ``input_ndim``, how many
dimensions one member's input has, so a task model can tell a packed batch from a plain one.
"""

from __future__ import annotations

import torch
from torch import nn

from resnorm.models.layers import Embedding, PatchProjection


class PatchEmbed2d(nn.Module):
    """ViT patches: (B, C, H, W) -> (B, (H/p)·(W/p), dim) per member, a stride-p convolution."""

    input_ndim = 4

    def __init__(self, image_size: int, patch: int, channels: int, dim: int,
                 members: int = 1) -> None:  # fmt: skip
        super().__init__()
        if image_size % patch:
            raise ValueError(f"task.patch={patch} must divide the image size {image_size}")
        self.num_tokens = (image_size // patch) ** 2
        self.members = members
        self.proj = PatchProjection(channels, dim, patch, spatial_dims=2, members=members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class TimePatchEmbed(nn.Module):
    """Keyword-Transformer patches: (B, n_mels, frames) -> (B, frames/p, dim), per member."""

    input_ndim = 3

    def __init__(self, n_mels: int, frames: int, patch: int, dim: int,
                 members: int = 1) -> None:  # fmt: skip
        super().__init__()
        if frames % patch:
            raise ValueError(f"task.patch={patch} must divide the number of frames {frames}")
        self.num_tokens = frames // patch
        self.members = members
        self.proj = PatchProjection(n_mels, dim, patch, spatial_dims=1, members=members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class TokenEmbed(nn.Module):
    """Integer tokens (B, T) -> (B, T, dim), per member."""

    input_ndim = 2

    def __init__(self, vocab_size: int, seq_len: int, dim: int, members: int = 1) -> None:
        super().__init__()
        self.num_tokens = seq_len
        self.members = members
        self.emb = Embedding(vocab_size, dim, members=members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x)
