"""Normalization layers, each behind the ``NORMS`` registry (``model.norm=...``).

All normalize over the last (feature) dimension and carry 2·dim parameters (γ, β) per
member, except where noted, so that parameter counts compare like with like. Parameters
have a leading member dimension; a pack of one calls the plain functional op with
``weight[0]``, a larger pack normalizes without affine and applies each member's γ, β.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnorm.models.members import member_broadcast
from resnorm.models.registry import Registry

NORMS: Registry[type[nn.Module]] = Registry("model.norm")


def _gain_and_shift(dim: int, members: int) -> tuple[nn.Parameter, nn.Parameter]:
    return nn.Parameter(torch.ones(members, dim)), nn.Parameter(torch.zeros(members, dim))


@NORMS.register("layernorm")
class LayerNorm(nn.LayerNorm):
    """Ba et al. 2016: (x - mean) / sqrt(var + eps) · γ + β. eps=1e-12 reproduces BERT."""

    def __init__(self, dim: int, eps: float = 1e-5, members: int = 1) -> None:
        nn.Module.__init__(self)
        self.normalized_shape, self.eps, self.elementwise_affine = (dim,), eps, True
        self.members = members
        self.weight, self.bias = _gain_and_shift(dim, members)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(1.0)
            self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.members == 1:
            return F.layer_norm(x, self.normalized_shape, self.weight[0], self.bias[0], self.eps)
        y = F.layer_norm(x, self.normalized_shape, None, None, self.eps)
        return torch.addcmul(member_broadcast(self.bias, x), y, member_broadcast(self.weight, x))


@NORMS.register("rmsnorm")
class RMSNorm(nn.Module):
    """Zhang & Sennrich 2019: x / sqrt(mean(x²) + eps) · γ (no centring, no β: dim params)."""

    def __init__(self, dim: int, eps: float = 1e-5, members: int = 1) -> None:
        super().__init__()
        self.eps, self.members = eps, members
        self.weight = nn.Parameter(torch.ones(members, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.members == 1:
            return F.rms_norm(x, (x.shape[-1],), self.weight[0], self.eps)
        y = F.rms_norm(x, (x.shape[-1],), None, self.eps)
        return y * member_broadcast(self.weight, x)


@NORMS.register("dyt")
class DyT(nn.Module):
    """Zhu et al. 2025, Dynamic Tanh: γ · tanh(α x) + β with a learnable scalar α (init 0.5)."""

    def __init__(self, dim: int, eps: float = 1e-5, alpha_init: float = 0.5,
                 members: int = 1) -> None:  # fmt: skip
        super().__init__()
        del eps  # DyT has no epsilon; accepted so every norm shares one constructor
        self.alpha = nn.Parameter(torch.full((members,), float(alpha_init)))
        self.weight, self.bias = _gain_and_shift(dim, members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gain, shift = member_broadcast(self.weight, x), member_broadcast(self.bias, x)
        return torch.tanh(member_broadcast(self.alpha, x) * x) * gain + shift


@NORMS.register("uncentered_ln")
class UncenteredLayerNorm(nn.Module):
    """The seed article's formula, kept as an ablation: y / sqrt(var(y) + eps) · γ + β.

    The variance is computed around the mean, but the mean is never subtracted from y.
    """

    def __init__(self, dim: int, eps: float = 1e-5, members: int = 1) -> None:
        super().__init__()
        self.eps = eps
        self.weight, self.bias = _gain_and_shift(dim, members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.var(dim=-1, unbiased=False, keepdim=True)
        gain, shift = member_broadcast(self.weight, x), member_broadcast(self.bias, x)
        return x * torch.rsqrt(var + self.eps) * gain + shift


def build_norm(name: str, dim: int, eps: float = 1e-5, members: int = 1) -> nn.Module:
    return NORMS.get(name)(dim, eps=eps, members=members)
