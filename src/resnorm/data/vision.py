"""Real image datasets for the ViT: CIFAR-10/100, MNIST, Fashion-MNIST via torchvision.

torchvision reads the official on-disk formats (CIFAR pickle batches, MNIST idx files)
and downloads them when ``download=true`` and the machine is online. Images are kept
as uint8 tensors in memory (CIFAR-10 train: 150 MB) and normalised per batch, with the
standard augmentation (random crop with 4-pixel padding + horizontal flip) for CIFAR.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from resnorm.data.digits import split_indices
from resnorm.data.errors import DataError
from resnorm.data.loaders import TensorLoader
from resnorm.data.spec import TaskSpec


@dataclass(frozen=True)
class ImageSet:
    tv_class: str
    folder: str  # what torchvision expects under data_dir
    archive: str  # what a user downloads by hand
    size: int
    channels: int
    classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_flip: bool


DATASETS = {
    "cifar10": ImageSet(
        "CIFAR10", "cifar-10-batches-py", "cifar-10-python.tar.gz", 32, 3, 10,
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), True,
    ),
    "cifar100": ImageSet(
        "CIFAR100", "cifar-100-python", "cifar-100-python.tar.gz", 32, 3, 100,
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), True,
    ),
    "mnist": ImageSet(
        "MNIST", "MNIST/raw", "the four MNIST idx files", 28, 1, 10,
        (0.1307,), (0.3081,), False,
    ),
    "fashion_mnist": ImageSet(
        "FashionMNIST", "FashionMNIST/raw", "the four Fashion-MNIST idx files", 28, 1, 10,
        (0.2860,), (0.3530,), False,
    ),
}  # fmt: skip


def load_split(name: str, root: str, train: bool, download: bool) -> tuple[torch.Tensor, ...]:
    """(uint8 images (N, C, H, W), int64 labels), or one clear DataError."""
    import torchvision.datasets as tvd

    info = DATASETS[name]
    where = Path(root) / info.folder
    try:
        ds = getattr(tvd, info.tv_class)(root=root, train=train, download=download)
    except Exception as exc:  # torchvision says "not found or corrupted" in many forms
        how = (
            f"get {info.archive} and extract it under {root}"
            if not download
            else "check the network or extract the files by hand"
        )
        raise DataError(
            f"{name}: dataset missing or corrupt at {where} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); {how}, or run with "
            "task.download=true on a machine with internet"
        ) from exc
    images = torch.as_tensor(np.asarray(ds.data))
    images = images.permute(0, 3, 1, 2) if images.ndim == 4 else images.unsqueeze(1)
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
    if len(images) == 0 or len(images) != len(labels):
        raise DataError(f"{name}: no images or mismatched labels under {where}")
    return images.contiguous(), labels


class ImageBatches:
    """Per-batch uint8 -> normalised float, with random crop + flip when training."""

    def __init__(self, info: ImageSet, train: bool, seed: int) -> None:
        self.mean = torch.tensor(info.mean).view(1, -1, 1, 1)
        self.std = torch.tensor(info.std).view(1, -1, 1, 1)
        self.augment = train and info.crop_flip
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x, y = batch
        x = (x.float() / 255.0 - self.mean.to(x.device)) / self.std.to(x.device)
        if self.augment:
            x = random_crop_flip(x, pad=4, gen=self.gen)
        return x, y


def random_crop_flip(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad``, crop back at a random offset per image, flip half of them."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chan, rows, cols]
    flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


class VisionDataModule(pl.LightningDataModule):
    def __init__(
        self,
        dataset: str,
        data_dir: str = "data",
        download: bool = False,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        patch: int = 4,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise ValueError(
                f"task.dataset={dataset!r} is not a valid choice; allowed: {', '.join(DATASETS)}"
            )
        self.info = DATASETS[dataset]
        self.name, self.data_dir, self.download = dataset, data_dir, download
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_fraction, self.split_seed, self.seed = val_fraction, split_seed, seed
        self.spec = TaskSpec(
            kind="classification",
            embed="image",
            embed_args={
                "image_size": self.info.size,
                "patch": patch,
                "channels": self.info.channels,
            },
            num_classes=self.info.classes,
            chance=1.0 / self.info.classes,
        )
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y = load_split(self.name, self.data_dir, train=True, download=self.download)
        tr, va, _ = split_indices(y.numpy(), (self.val_fraction, 0.0), self.split_seed)
        self.splits["train"] = (x[tr], y[tr])
        self.splits["val"] = (x[va], y[va])
        self.splits["test"] = load_split(self.name, self.data_dir, train=False, download=False)

    def _loader(self, split: str, train: bool) -> TensorLoader:
        return TensorLoader(
            *self.splits[split],
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            drop_last=train,
            transform=ImageBatches(self.info, train, self.seed),
        )

    def train_dataloader(self) -> TensorLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> TensorLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> TensorLoader:
        return self._loader("test", False)
