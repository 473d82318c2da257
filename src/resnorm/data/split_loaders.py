"""The three loaders of a data module whose splits are in-memory tensors."""

from __future__ import annotations

import torch

from resnorm.data.loaders import TensorLoader


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

    def val_dataloader(self) -> TensorLoader:
        return TensorLoader(*self.splits["val"], batch_size=self.eval_batch_size)

    def test_dataloader(self) -> TensorLoader:
        return TensorLoader(*self.splits["test"], batch_size=self.eval_batch_size)
