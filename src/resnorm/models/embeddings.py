"""Input embeddings that turn each modality into a (B, T, dim) token sequence."""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed2d(nn.Module):
    """ViT patches: (B, C, H, W) -> (B, (H/p)·(W/p), dim) by a stride-p convolution."""

    def __init__(self, image_size: int, patch: int, channels: int, dim: int) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"task.patch={patch} must divide the image size {image_size}")
        self.num_tokens = (image_size // patch) ** 2
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class TimePatchEmbed(nn.Module):
    """Keyword-Transformer patches: (B, n_mels, frames) -> (B, frames/p, dim), p frames each."""

    def __init__(self, n_mels: int, frames: int, patch: int, dim: int) -> None:
        super().__init__()
        if frames % patch:
            raise ValueError(f"task.patch={patch} must divide the number of frames {frames}")
        self.num_tokens = frames // patch
        self.proj = nn.Conv1d(n_mels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).transpose(1, 2)


class TokenEmbed(nn.Module):
    """Integer tokens (B, T) -> (B, T, dim)."""

    def __init__(self, vocab_size: int, seq_len: int, dim: int) -> None:
        super().__init__()
        self.num_tokens = seq_len
        self.emb = nn.Embedding(vocab_size, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x)
