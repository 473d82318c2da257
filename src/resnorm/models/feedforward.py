"""The position-wise feed-forward sublayer and its activations (``model.activation=...``)."""

from __future__ import annotations

import torch
from torch import nn

from resnorm.models.registry import Registry

ACTIVATIONS: Registry[type[nn.Module]] = Registry("model.activation")
ACTIVATIONS.register("gelu")(nn.GELU)
ACTIVATIONS.register("relu")(nn.ReLU)
ACTIVATIONS.register("silu")(nn.SiLU)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = ACTIVATIONS.get(activation)()
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))

    # What an initialisation hook (a residual mode's ``init_branch``) may re-initialise:
    # an FFN has no query/key; both of its weights carry values to the output.
    def query_key_weights(self) -> tuple[torch.Tensor, ...]:
        return ()

    def value_output_weights(self) -> tuple[torch.Tensor, ...]:
        return (self.fc1.weight, self.fc2.weight)
