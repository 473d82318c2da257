"""Dropout with a rate and a random stream per member of a pack.

A pack trains k runs as one model (models/members.py), so one ``nn.Dropout`` would give
every member member 0's rate and draw all k masks from one stream. ``MemberDropout`` keeps
a rate per member, and once ``attach_member_dropout`` has given the model one generator
per member (seeded from the member's seed), member i draws its masks from its own
generator, in the same order and shapes as its solo run: a member computes what its solo
run computes, whatever the other members do. Without attached streams (the model used on
its own) it draws from torch's global generator, as ``nn.Dropout`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

STREAM_OFFSET = 1 << 32  # member seeds are < 2**32: the dropout stream never equals a data seed


class MemberStreams:
    """One ``torch.Generator`` per member, made on the device that first asks for it."""

    def __init__(self, seeds: Sequence[int]) -> None:
        self.seeds = [int(s) for s in seeds]
        self._device: torch.device | None = None
        self._gens: list[torch.Generator] = []
        self._pending: list[torch.Tensor] | None = None  # states loaded before first use

    def generator(self, i: int, device: torch.device) -> torch.Generator:
        if self._device != device:
            self._gens = [torch.Generator(device=device) for _ in self.seeds]
            for g, seed in zip(self._gens, self.seeds, strict=True):
                g.manual_seed(seed + STREAM_OFFSET)
            if self._pending is not None:
                for g, state in zip(self._gens, self._pending, strict=True):
                    g.set_state(state)
                self._pending = None
            self._device = device
        return self._gens[i]

    def state_dict(self) -> dict[str, Any]:
        """The generators' states (for a resume that draws the masks it would have drawn)."""
        states = [g.get_state() for g in self._gens] if self._gens else self._pending
        return {"seeds": list(self.seeds), "states": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["seeds"]) != self.seeds:
            raise ValueError(f"dropout streams of seeds {state['seeds']}, not {self.seeds}")
        self._device, self._gens, self._pending = None, [], state["states"]


class MemberDropout(nn.Module):
    """Dropout of x (members, ...) with ``rates[i]`` on member i (any shape for one member)."""

    def __init__(self, p: float = 0.0, members: int = 1) -> None:
        super().__init__()
        self.rates: tuple[float, ...] = (float(p),) * members
        self.streams: MemberStreams | None = None

    @property
    def active(self) -> bool:
        """Whether a forward pass now drops anything."""
        return self.training and any(self.rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        if len(self.rates) == 1:
            return self._drop(x, 0)
        return torch.cat([self._drop(x[i : i + 1], i) for i in range(len(self.rates))])

    def _drop(self, x: torch.Tensor, i: int) -> torch.Tensor:
        p = self.rates[i]
        if p == 0.0:
            return x
        if self.streams is None:
            return F.dropout(x, p, training=True)
        g = self.streams.generator(i, x.device)
        keep = torch.empty(x.shape, device=x.device).bernoulli_(1.0 - p, generator=g)
        return x * keep.to(x.dtype) / (1.0 - p)

    def extra_repr(self) -> str:
        return f"rates={self.rates}"


def attach_member_dropout(
    model: nn.Module, rates: Sequence[float], seeds: Sequence[int]
) -> MemberStreams:
    """Give every ``MemberDropout`` of ``model`` (a pack of len(rates) members) the members'
    rates and one shared set of per-member streams; return the streams."""
    streams = MemberStreams(seeds)
    if len(rates) != len(streams.seeds):
        raise ValueError(f"{len(rates)} dropout rates for {len(streams.seeds)} seeds")
    for m in model.modules():
        if isinstance(m, MemberDropout):
            if len(m.rates) != len(rates):
                raise ValueError(f"a model of {len(m.rates)} members got {len(rates)} rates")
            m.rates, m.streams = tuple(float(r) for r in rates), streams
    return streams
