"""Residual modes: how a sublayer's output f = F(·) is combined with its input x.

Each mode is a small ``Residual`` subclass ``skip(x, f)`` behind the ``RESIDUALS`` registry
(``model.residual=...``) and carries its own rules as class-level hooks, so a new mode is
one class here plus one ``conf/variant`` file. The identity residual owns no parameters.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from resnorm.models.members import member_broadcast
from resnorm.models.profile import ProfiledInit
from resnorm.models.registry import Registry


class Branch(Protocol):
    """What a sublayer function (Attention, FeedForward) shows an initialisation hook: its
    weights as (members, out, in) views, so a hook initialises member after member."""

    def query_key_weights(self) -> tuple[torch.Tensor, ...]: ...

    def value_output_weights(self) -> tuple[torch.Tensor, ...]: ...


class Residual(nn.Module):
    """Base of every residual mode.

    ``requires_position``: the norm positions the mode is defined for (None: any); checked
    by ``BlockConfig``. ``init_branch(fn)``: re-initialise the sublayer F it wraps, called
    by the Encoder after its base init, block by block, attention before FFN. A mode whose
    init needs data also mixes in ``ProfiledInit`` (models/profile.py). Parameters carry a
    leading ``members`` dimension (models/members.py).
    """

    requires_position: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, dim: int, depth: int, members: int = 1, **_: Any) -> None:
        super().__init__()
        self.members = members

    def init_branch(self, fn: Branch) -> None:
        """Keep the Encoder's Xavier-uniform init (the default)."""


RESIDUALS: Registry[type[Residual]] = Registry("model.residual")


@RESIDUALS.register("on")
class Identity(Residual):
    """x + f: the plain residual connection (He et al. 2016). Zero parameters."""

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return x + f


@RESIDUALS.register("off")
class NoResidual(Residual):
    """f alone: the skip path is removed."""

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return f


@RESIDUALS.register("rezero")
class ReZero(Residual):
    """x + α·f with one scalar α initialised at 0 (Bachlechner et al. 2020)."""

    def __init__(self, dim: int, depth: int, members: int = 1, **_: Any) -> None:
        super().__init__(dim, depth, members)
        self.alpha = nn.Parameter(torch.zeros(members))

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return x + member_broadcast(self.alpha, f) * f


@RESIDUALS.register("layerscale")
class LayerScale(Residual):
    """x + diag(λ)·f with a per-channel λ initialised small (Touvron et al. 2021, CaiT)."""

    def __init__(self, dim: int, depth: int, layerscale_init: float = 0.1, members: int = 1,
                 **_: Any) -> None:  # fmt: skip
        super().__init__(dim, depth, members)
        self.gamma = nn.Parameter(torch.full((members, dim), float(layerscale_init)))

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return x + member_broadcast(self.gamma, f) * f


@RESIDUALS.register("deepnorm")
class DeepNormSkip(Residual):
    """α·x + f with the constant α = (2L)^¼ for an L-layer encoder (Wang et al. 2022).

    Defined for Post-LN only. ``init_branch`` re-draws the value, output and FFN weights
    Xavier-normal with gain β = (8L)^-¼, queries and keys with gain 1, member by member.
    α is a constant shared by every member.
    """

    requires_position = ("post",)

    def __init__(self, dim: int, depth: int, members: int = 1, **_: Any) -> None:
        super().__init__(dim, depth, members)
        self.register_buffer("alpha", torch.tensor(deepnorm_alpha(depth)), persistent=False)
        self.beta = deepnorm_beta(depth)

    def init_branch(self, fn: Branch) -> None:
        with torch.no_grad():
            for w in fn.query_key_weights():
                for member in w:
                    nn.init.xavier_normal_(member)
            for w in fn.value_output_weights():
                for member in w:
                    nn.init.xavier_normal_(member, gain=self.beta)

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return self.alpha * x + f


@RESIDUALS.register("admin")
class Admin(Residual, ProfiledInit):
    """x ⊙ ω + f with a per-channel ω set by a profiling pass (Liu et al. 2020, Admin).

    Defined for Post-LN only: the sublayer is N(x ⊙ ω_i + F_i(x)). ω is trainable and
    starts at 1 (plain Post-LN) until ``profile_init`` runs the model once on a batch.
    Implemented: the profiling initialisation of the authors' Transformer-Clinic code.
    Over the sublayers i = 1..2L in forward order (attention then FFN, block by block):

        ω_1 = 1,    ω_{i+1} = sqrt(Var[x_{i-1} ⊙ ω_i] + Var[F_i(x_{i-1})])

    with Var the population variance over every element of the batch and x_{i-1} the
    sublayer's input. Under Post-LN x_{i-1} (i > 1) is a LayerNorm output of unit variance
    at init, so ω_i² = Var[x_0] + Σ_{j<i} Var[F_j(x_{j-1})] (up to the norm's eps): the
    paper's ω_i = sqrt(Σ_{j<i} Var[f_j(x_{j-1})]) with the input stream as the j = 0 term.
    Unlike the authors' pass, ours runs without dropout (eval mode) and so is deterministic.
    In a pack each member gets its own ω from its own slice of the batch (the variances are
    per member); profiling a member view (models/members.py) is the solo computation.
    """

    requires_position = ("post",)

    def __init__(self, dim: int, depth: int, members: int = 1, **_: Any) -> None:
        super().__init__(dim, depth, members)
        self.omega = nn.Parameter(torch.ones(members, dim))
        self._profile: dict[str, Any] | None = None

    def begin_profile(self, shared: dict[str, Any]) -> None:
        self._profile = shared

    def end_profile(self) -> None:
        self._profile = None

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        if self._profile is not None:
            self._record(x, f)
        return x * member_broadcast(self.omega, x) + f

    @torch.no_grad()
    def _record(self, x: torch.Tensor, f: torch.Tensor) -> None:
        assert self._profile is not None
        previous = self._profile.get("admin_omega", [1.0] * self.members)
        for w, value in zip(self.omega, previous, strict=True):
            w.fill_(value)
        skip_var = member_variance(x * member_broadcast(self.omega, x), self.members)
        total = (skip_var + member_variance(f, self.members)).tolist()
        self._profile["admin_omega"] = [math.sqrt(v) for v in total]


def member_variance(t: torch.Tensor, members: int) -> torch.Tensor:
    """Population variance of each member's elements, (members,) in float32."""
    if members == 1:
        return t.float().var(correction=0)[None]
    return t.float().reshape(members, -1).var(dim=1, correction=0)


def deepnorm_alpha(depth: int) -> float:
    return (2.0 * depth) ** 0.25


def deepnorm_beta(depth: int) -> float:
    return (8.0 * depth) ** -0.25
