"""Residual modes: how a sublayer's output f = F(·) is combined with its input x.

Each mode is a small module ``skip(x, f)`` behind the ``RESIDUALS`` registry
(``model.residual=...``). The identity residual owns no parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from resnorm.models.registry import Registry

RESIDUALS: Registry[type[nn.Module]] = Registry("model.residual")


@RESIDUALS.register("on")
class Identity(nn.Module):
    """x + f: the plain residual connection (He et al. 2016). Zero parameters."""

    def __init__(self, dim: int, depth: int, **_: object) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return x + f


@RESIDUALS.register("off")
class NoResidual(nn.Module):
    """f alone: the skip path is removed."""

    def __init__(self, dim: int, depth: int, **_: object) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return f


@RESIDUALS.register("rezero")
class ReZero(nn.Module):
    """x + α·f with one scalar α initialised at 0 (Bachlechner et al. 2020)."""

    def __init__(self, dim: int, depth: int, **_: object) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * f


@RESIDUALS.register("layerscale")
class LayerScale(nn.Module):
    """x + diag(λ)·f with a per-channel λ initialised small (Touvron et al. 2021, CaiT)."""

    def __init__(self, dim: int, depth: int, layerscale_init: float = 0.1, **_: object) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(layerscale_init)))

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * f


@RESIDUALS.register("deepnorm")
class DeepNormSkip(nn.Module):
    """α·x + f with the constant α = (2L)^¼ for an L-layer encoder (Wang et al. 2022).

    The matching β = (8L)^-¼ scaling of the branch initialisation is applied by the
    Encoder (see ``deepnorm_beta``); DeepNorm is defined for Post-LN only.
    """

    def __init__(self, dim: int, depth: int, **_: object) -> None:
        super().__init__()
        self.register_buffer("alpha", torch.tensor(deepnorm_alpha(depth)), persistent=False)

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return self.alpha * x + f


def deepnorm_alpha(depth: int) -> float:
    return (2.0 * depth) ** 0.25


def deepnorm_beta(depth: int) -> float:
    return (8.0 * depth) ** -0.25
