"""Linear, patch-projection and embedding layers with a leading member dimension.

Each owns its parameters as (members, *solo_shape) and draws the same default init as the
torch layer it replaces, member after member, so a members=1 model built after a given
seed holds exactly the torch layer's weights. With members=1 the forward is that layer's
functional call on ``weight[0]``; with more, one batched kernel serves every member.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def _torch_default_init(weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """nn.Linear's / nn.ConvNd's reset_parameters, one member at a time (same RNG draws)."""
    for i, w in enumerate(weight):
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        if bias is not None:
            fan_in = w[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(bias[i], -bound, bound)


class Linear(nn.Linear):
    """``nn.Linear`` per member: weight (members, out, in), bias (members, out).

    A subclass so that code looking for ``nn.Linear`` (init loops, FLOP counters) finds it;
    ``in_features``/``out_features`` keep their meaning. x is (members, ..., in); with
    members=1 any leading shape (``F.linear`` on ``weight[0]``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 members: int = 1) -> None:  # fmt: skip
        nn.Module.__init__(self)
        self.in_features, self.out_features, self.members = in_features, out_features, members
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(members, out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _torch_default_init(self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.members == 1:
            return F.linear(x, self.weight[0], None if self.bias is None else self.bias[0])
        k, w = self.members, self.weight.transpose(1, 2)
        flat = x.reshape(k, -1, self.in_features)
        y = torch.bmm(flat, w) if self.bias is None else torch.baddbmm(self.bias[:, None], flat, w)
        return y.view(*x.shape[:-1], self.out_features)


class PatchProjection(nn.Module):
    """Non-overlapping patches (kernel = stride = ``patch``) of a 1-d or 2-d signal -> tokens.

    ``nn.Conv1d``/``nn.Conv2d``'s parameters and init per member: weight (members, dim,
    channels, *kernel), bias (members, dim). x is (members, B, channels, *spatial), the
    output (members, B, tokens, dim) with the tokens in the conv's row-major order.
    """

    def __init__(self, channels: int, dim: int, patch: int, spatial_dims: int,
                 members: int = 1) -> None:  # fmt: skip
        super().__init__()
        self.patch, self.spatial_dims, self.members = patch, spatial_dims, members
        self.conv = {1: F.conv1d, 2: F.conv2d}[spatial_dims]
        kernel = (patch,) * spatial_dims
        self.weight = nn.Parameter(torch.empty(members, dim, channels, *kernel))
        self.bias = nn.Parameter(torch.empty(members, dim))
        _torch_default_init(self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.members == 1:
            y = self.conv(x[0], self.weight[0], self.bias[0], stride=self.patch)
            return y.flatten(2).transpose(1, 2).unsqueeze(0)
        # Patches do not overlap: cut them out and project them with one batched matmul
        # (on CPU faster than a convolution grouped by member, and than one per member).
        k, b, c, *size = x.shape
        p, sd = self.patch, self.spatial_dims
        grid = [s // p for s in size]
        cut = x.reshape(k, b, c, *(v for n in grid for v in (n, p)))
        order = (0, 1, *(3 + 2 * i for i in range(sd)), 2, *(4 + 2 * i for i in range(sd)))
        patches = cut.permute(order).reshape(k, -1, c * p**sd)
        w = self.weight.reshape(k, self.weight.shape[1], -1).transpose(1, 2)
        return torch.baddbmm(self.bias[:, None], patches, w).view(k, b, -1, w.shape[-1])


class Embedding(nn.Module):
    """``nn.Embedding`` per member: weight (members, vocab, dim), drawn N(0, 1) like it.

    Integer ids (members, B, ...) -> (members, B, ..., dim); members > 1 look up one
    (members·vocab, dim) table with member i's ids offset by i·vocab.
    """

    def __init__(self, num_embeddings: int, dim: int, members: int = 1) -> None:
        super().__init__()
        self.num_embeddings, self.members = num_embeddings, members
        self.weight = nn.Parameter(torch.empty(members, num_embeddings, dim))
        with torch.no_grad():
            for w in self.weight:
                nn.init.normal_(w)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.members == 1:
            return F.embedding(ids, self.weight[0])
        offsets = torch.arange(self.members, device=ids.device) * self.num_embeddings
        table = self.weight.reshape(-1, self.weight.shape[-1])
        return F.embedding(ids + offsets.view(-1, *(1,) * (ids.ndim - 1)), table)
