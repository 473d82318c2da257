"""The three loaders of a data module whose splits are in-memory tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from resnorm.data.loaders import TensorLoader
from resnorm.data.packed_loader import PackedLoader


def packed_train_loader(datamodule: Any, seeds: Sequence[int]) -> PackedLoader:
    """The training loader of a pack: member i's batches are the ones
    ``datamodule.train_dataloader()`` gives a run with ``seed=seeds[i]``.

    Every data module builds its training loader, shuffling and augmentation included,
    from ``self.seed`` when asked, so each member's loader is built with the seed set to
    the member's (and set back after): one definition of a run's data order, solo or packed.
    """
    saved, loaders = datamodule.seed, []
    try:
        for seed in seeds:
            datamodule.seed = seed
            loaders.append(datamodule.train_dataloader())
    finally:
        datamodule.seed = saved
    return PackedLoader(loaders)


class SplitLoaders:
    """Mixin for a LightningDataModule that fills ``self.splits`` in ``setup()`` and sets
    ``batch_size``, ``eval_batch_size`` and ``seed``: shuffled training batches, plain
    evaluation batches."""

    splits: dict[str, tuple[torch.Tensor, ...]]
    batch_size: int
    eval_batch_size: int
    seed: int

    def train_dataloader(self) -> TensorLoader:
        return TensorLoader(
            *self.splits["train"], batch_size=self.batch_size, shuffle=True, seed=self.seed,
            drop_last=True,
        )  # fmt: skip

    def train_dataloader_packed(self, seeds: Sequence[int]) -> PackedLoader:
        return packed_train_loader(self, seeds)

    def val_dataloader(self) -> TensorLoader:
        return TensorLoader(*self.splits["val"], batch_size=self.eval_batch_size)

    def test_dataloader(self) -> TensorLoader:
        return TensorLoader(*self.splits["test"], batch_size=self.eval_batch_size)
