"""Batches straight from in-memory tensors: no DataLoader, no workers, no collation.

The embedded datasets are a few MB, so indexing resident tensors is the fastest path on
CPU and lets them live on the GPU. The order is a pure function of (seed, epoch), and
the loader's position is checkpointable, so a resumed run sees the same batches. Under
DDP each rank reads its own disjoint shard of every epoch's order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch


class TensorLoader:
    # Where every loader keeps its tensors (set for GPU runs): moved there once, then
    # batches are sliced on the device with no host-to-device copy per step.
    device: torch.device | None = None

    @classmethod
    def keep_on(cls, device: torch.device | None) -> None:
        cls.device = device

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        transform: Callable[[tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]] | None = None,
        shard: tuple[int, int] | None = None,
    ) -> None:
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError("all tensors of a TensorLoader must have the same length")
        if batch_size < 1:
            raise ValueError(f"task.batch_size={batch_size} must be a positive integer")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last and n >= batch_size
        self.shard = shard  # (rank, world size); None: ask torch.distributed
        self.transform = transform  # per-batch augmentation, on whatever device holds the data
        self.epoch = 0
        self._start = 0  # batch index to start the current epoch from (set on resume)

    def _shard(self) -> tuple[int, int]:
        """(rank, world size) under torch.distributed (DDP), else (0, 1)."""
        if self.shard is not None:
            return self.shard
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _local_size(self) -> int:
        rank, world = self._shard()
        n = len(self.tensors[0])
        # training shards are equal (n // world) so every rank runs the same number of steps
        return n // world if self.shuffle else len(range(rank, n, world))

    def __len__(self) -> int:
        n = self._local_size()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def to(self, device: torch.device | str) -> TensorLoader:
        self.tensors = tuple(t.to(device) for t in self.tensors)
        return self

    def _order(self, epoch: int) -> torch.Tensor | None:
        """Indices of this rank's examples in this epoch's order; None for 0..n-1."""
        rank, world = self._shard()
        n = len(self.tensors[0])
        if not self.shuffle:
            return None if world == 1 else torch.arange(rank, n, world)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g)
        if world > 1:  # same permutation on every rank, disjoint strided shards
            order = order[: (n // world) * world][rank::world]
        return order.to(self.tensors[0].device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.device is not None and self.tensors[0].device != self.device:
            self.to(self.device)
        order, bs = self._order(self.epoch), self.batch_size
        start, self._start = self._start, 0
        for i in range(start, len(self)):
            self._position = i + 1
            if order is None:
                batch = tuple(t[i * bs : (i + 1) * bs] for t in self.tensors)
            else:
                idx = order[i * bs : (i + 1) * bs]
                batch = tuple(t[idx] for t in self.tensors)
            yield self.transform(batch) if self.transform else batch
        self.epoch += 1
        self._position = 0

    # Lightning saves and restores these with the fit loop (stateful iterables).
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": getattr(self, "_position", 0)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self._start = int(state["epoch"]), int(state["position"])
