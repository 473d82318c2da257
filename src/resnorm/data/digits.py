"""``task=image_digits``: scikit-learn's 8×8 handwritten digits (1,797 real images).

The images ship inside scikit-learn, so this task needs no download. The split is
stratified and fixed by ``split_seed`` so that every run of a study sees the same data.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from resnorm.data.spec import TaskSpec
from resnorm.data.split_loaders import SplitLoaders


def split_indices(
    labels: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/val/test index split; ``fractions`` are (val, test)."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val, n_test = (round(f * len(idx)) for f in fractions)
        parts[1].extend(idx[:n_val])
        parts[2].extend(idx[n_val : n_val + n_test])
        parts[0].extend(idx[n_val + n_test :])
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)  # type: ignore[return-value]


class DigitsDataModule(SplitLoaders, pl.LightningDataModule):
    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        patch: int = 2,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.fractions = (val_fraction, test_fraction)
        self.split_seed, self.seed = split_seed, seed
        self.spec = TaskSpec(
            kind="classification",
            embed="image",
            embed_args={"image_size": 8, "patch": patch, "channels": 1},
            num_classes=10,
            chance=0.1,
        )
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        tr, va, te = split_indices(digits.target, self.fractions, self.split_seed)
        mean, std = x[tr].mean(), x[tr].std()  # statistics of the training split only
        x = (x - mean) / std
        self.splits = {name: (x[i], y[i]) for name, i in (("train", tr), ("val", va), ("test", te))}
