"""The training batches of a pack: k runs' own batches stacked on a member dimension.

Member i reads exactly the batches its solo run would (its own ``TensorLoader`` with its
seed and its own transform); the pack stacks them into (k, B, ...). The members share one
copy of the data, and the loaders advance in lockstep, so one (epoch, position) state
checkpoints them all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from resnorm.data.loaders import TensorLoader


class PackedLoader:
    """Stacks the batches of k ``TensorLoader``s over the same tensors, one per member."""

    def __init__(self, loaders: Sequence[TensorLoader]) -> None:
        if not loaders:
            raise ValueError("a PackedLoader needs at least one member loader")
        first = loaders[0]
        for loader in loaders[1:]:
            same = len(loader.tensors) == len(first.tensors) and all(
                a is b or (a.shape == b.shape and torch.equal(a, b))
                for a, b in zip(loader.tensors, first.tensors, strict=False)
            )
            if not same or len(loader) != len(first) or loader.batch_size != first.batch_size:
                raise ValueError("the members of a pack must read the same data in equal batches")
            loader.tensors = first.tensors  # one copy of the data, moved to a device once
        self.loaders = list(loaders)

    def __len__(self) -> int:
        return len(self.loaders[0])

    @property
    def seeds(self) -> list[int]:
        return [loader.seed for loader in self.loaders]

    def to(self, device: torch.device | str) -> PackedLoader:
        self.loaders[0].to(device)
        for loader in self.loaders[1:]:
            loader.tensors = self.loaders[0].tensors
        return self

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        # TensorLoader.device (set for GPU runs) holds the data; moved here once for all
        # members, so that no member loader makes a copy of its own
        device = TensorLoader.device
        if device is not None and self.loaders[0].tensors[0].device != device:
            self.to(device)
        members = [iter(loader) for loader in self.loaders]
        while True:
            # next(..., None) on every member, also at the end: that runs each loader's
            # end-of-epoch bookkeeping (epoch += 1), keeping the members in lockstep
            batches = [next(it, None) for it in members]
            if batches[0] is None:
                return
            if len(batches) == 1:  # the ordinary run: a view, no copy
                yield tuple(t.unsqueeze(0) for t in batches[0])
            else:
                yield tuple(torch.stack(parts) for parts in zip(*batches, strict=True))

    # Lightning saves and restores these with the fit loop (stateful iterables).
    def state_dict(self) -> dict[str, Any]:
        return self.loaders[0].state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for loader in self.loaders:
            loader.load_state_dict(state)
