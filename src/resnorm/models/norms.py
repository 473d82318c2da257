"""Normalization layers, each behind the ``NORMS`` registry (``model.norm=...``).

All normalize over the last (feature) dimension and carry 2·dim parameters (γ, β),
except where noted, so that parameter counts compare like with like.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnorm.models.registry import Registry

NORMS: Registry[type[nn.Module]] = Registry("model.norm")


@NORMS.register("layernorm")
class LayerNorm(nn.LayerNorm):
    """Ba et al. 2016: (x - mean) / sqrt(var + eps) · γ + β. eps=1e-12 reproduces BERT."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__(dim, eps=eps)


@NORMS.register("rmsnorm")
class RMSNorm(nn.Module):
    """Zhang & Sennrich 2019: x / sqrt(mean(x²) + eps) · γ (no centring, no β: dim params)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


@NORMS.register("dyt")
class DyT(nn.Module):
    """Zhu et al. 2025, Dynamic Tanh: γ · tanh(α x) + β with a learnable scalar α (init 0.5)."""

    def __init__(self, dim: int, eps: float = 1e-5, alpha_init: float = 0.5) -> None:
        super().__init__()
        del eps  # DyT has no epsilon; accepted so every norm shares one constructor
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.alpha * x) * self.weight + self.bias


@NORMS.register("uncentered_ln")
class UncenteredLayerNorm(nn.Module):
    """The seed article's formula, kept as an ablation: y / sqrt(var(y) + eps) · γ + β.

    The variance is computed around the mean, but the mean is never subtracted from y.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.var(dim=-1, unbiased=False, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * self.weight + self.bias


def build_norm(name: str, dim: int, eps: float = 1e-5) -> nn.Module:
    return NORMS.get(name)(dim, eps=eps)
