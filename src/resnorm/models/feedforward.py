"""The position-wise feed-forward sublayer and its activations (``model.activation=...``)."""

from __future__ import annotations

import torch
from torch import nn

from resnorm.models.dropout import MemberDropout
from resnorm.models.layers import Linear
from resnorm.models.registry import Registry

ACTIVATIONS: Registry[type[nn.Module]] = Registry("model.activation")
ACTIVATIONS.register("gelu")(nn.GELU)
ACTIVATIONS.register("relu")(nn.ReLU)
ACTIVATIONS.register("silu")(nn.SiLU)


class FeedForward(nn.Module):
    """Linear, activation, Linear; x is (members, ..., dim) (any (..., dim) for one member)."""

    def __init__(self, dim: int, hidden: int, activation: str = "gelu", dropout: float = 0.0,
                 members: int = 1) -> None:  # fmt: skip
        super().__init__()
        self.fc1 = Linear(dim, hidden, members=members)
        self.act = ACTIVATIONS.get(activation)()
        self.drop1 = MemberDropout(dropout, members)
        self.fc2 = Linear(hidden, dim, members=members)
        self.drop2 = MemberDropout(dropout, members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))

    # What an initialisation hook (a residual mode's ``init_branch``) may re-initialise, as
    # (members, out, in): an FFN has no query/key; both of its weights carry values to the output.
    def query_key_weights(self) -> tuple[torch.Tensor, ...]:
        return ()

    def value_output_weights(self) -> tuple[torch.Tensor, ...]:
        return (self.fc1.weight, self.fc2.weight)
