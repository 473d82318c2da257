"""Where the norm sits around a sublayer F (``model.norm_position=...``).

With x the input, N a norm and ``skip`` the residual mode:

    post      N(skip(x, F(x)))
    pre       skip(x, F(N(x)))            (the Encoder adds a final N after the stack)
    sandwich  skip(x, N2(F(N1(x))))       (Peri-LN / NormFormer style)
    none      skip(x, F(x))
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from resnorm.models.registry import Registry

SUBLAYERS: Registry[type[nn.Module]] = Registry("model.norm_position")

NormFactory = Callable[[], nn.Module]


class Sublayer(nn.Module):
    def __init__(self, fn: nn.Module, skip: nn.Module, make_norm: NormFactory) -> None:
        super().__init__()
        self.fn = fn
        self.skip = skip


@SUBLAYERS.register("post")
class PostNorm(Sublayer):
    def __init__(self, fn: nn.Module, skip: nn.Module, make_norm: NormFactory) -> None:
        super().__init__(fn, skip, make_norm)
        self.norm = make_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.skip(x, self.fn(x)))


@SUBLAYERS.register("pre")
class PreNorm(Sublayer):
    def __init__(self, fn: nn.Module, skip: nn.Module, make_norm: NormFactory) -> None:
        super().__init__(fn, skip, make_norm)
        self.norm = make_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x, self.fn(self.norm(x)))


@SUBLAYERS.register("sandwich")
class SandwichNorm(Sublayer):
    def __init__(self, fn: nn.Module, skip: nn.Module, make_norm: NormFactory) -> None:
        super().__init__(fn, skip, make_norm)
        self.norm_in = make_norm()
        self.norm_out = make_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x, self.norm_out(self.fn(self.norm_in(x))))


@SUBLAYERS.register("none")
class NoNorm(Sublayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x, self.fn(x))


# Positions whose residual stream is left un-normalized and so gets a final norm.
FINAL_NORM_POSITIONS = ("pre", "sandwich")
