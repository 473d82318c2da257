"""Where the norm sits around a sublayer F (``model.norm_position=...``).

With x the input, N a norm and ``skip`` the residual mode:

    post      N(skip(x, F(x)))
    pre       skip(x, F(N(x)))            (the Encoder adds a final N after the stack)
    sandwich  skip(x, N2(F(N1(x))))       (NormFormer / Sandwich-LN style; final N too)
    peri      skip(x, N2(F(N1(x))))       (Peri-LN: sandwich plus N on the stack's input)
    none      skip(x, F(x))

Each position is a ``Sublayer`` subclass and carries its own stack-level rules as class
attributes, read by the Encoder: ``final_norm`` (a norm after the last block) and
``embed_norm`` (a norm on the embedding output, the first block's input).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from resnorm.models.registry import Registry

NormFactory = Callable[[], nn.Module]


class Sublayer(nn.Module):
    """One sublayer F (``fn``) wrapped with its residual mode (``skip``) and norms."""

    final_norm: ClassVar[bool] = False
    embed_norm: ClassVar[bool] = False

    def __init__(self, fn: nn.Module, skip: nn.Module, make_norm: NormFactory) -> None:
        super().__init__()
        self.fn = fn
        self.skip = skip

    def init_branch(self) -> None:
        """Let the residual mode re-initialise F (DeepNorm's β-scaled init, for one)."""
        self.skip.init_branch(self.fn)


SUBLAYERS: Registry[type[Sublayer]] = Registry("model.norm_position")


@SUBLAYERS.register("post")
class PostNorm(Sublayer):
    def __init__(self, fn: nn.Module, skip: nn.Module, make_norm: NormFactory) -> None:
        super().__init__(fn, skip, make_norm)
        self.norm = make_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.skip(x, self.fn(x)))


@SUBLAYERS.register("pre")
class PreNorm(Sublayer):
    # the residual stream is left un-normalized: the head reads it through a final norm
    final_norm = True

    def __init__(self, fn: nn.Module, skip: nn.Module, make_norm: NormFactory) -> None:
        super().__init__(fn, skip, make_norm)
        self.norm = make_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x, self.fn(self.norm(x)))


@SUBLAYERS.register("sandwich")
class SandwichNorm(Sublayer):
    final_norm = True

    def __init__(self, fn: nn.Module, skip: nn.Module, make_norm: NormFactory) -> None:
        super().__init__(fn, skip, make_norm)
        self.norm_in = make_norm()
        self.norm_out = make_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x, self.norm_out(self.fn(self.norm_in(x))))


@SUBLAYERS.register("peri")
class PeriNorm(SandwichNorm):
    """Peri-LN (Kim et al. 2025): x + N_out(F(N_in(x))) around each sublayer, a norm on the
    embedding output and a final norm. Differs from ``sandwich`` only by the embedding norm."""

    embed_norm = True


@SUBLAYERS.register("none")
class NoNorm(Sublayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x, self.fn(x))
