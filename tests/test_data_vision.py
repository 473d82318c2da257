"""Real image loaders on tiny fixtures written in the official on-disk formats."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from resnorm.data.errors import DataError
from resnorm.data.vision import VisionDataModule, random_crop_flip


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar10(root: Path, n_per_batch: int = 20) -> dict[str, list]:
    """data_batch_1..5 + test_batch + batches.meta, as in cifar-10-python.tar.gz."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lists: dict[str, list] = {"train": [], "test": []}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)
        lists["test" if name == "test_batch" else "train"].append([name, md5(folder / name)])
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    lists["meta"] = md5(folder / "batches.meta")
    return lists


@pytest.fixture
def cifar10(tmp_path, monkeypatch):
    lists = write_cifar10(tmp_path)
    # torchvision checks each batch's md5 against the official files; point it at ours.
    monkeypatch.setattr(tvd.CIFAR10, "train_list", lists["train"])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", lists["test"])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": lists["meta"]})
    return tmp_path


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0803 if array.ndim == 3 else 0x0801
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        f.write(b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.astype(np.uint8).tobytes())


def write_mnist(root: Path, cls: str = "MNIST", n: int = 40) -> Path:
    raw = root / cls / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split, count in (("train", n), ("t10k", n // 2)):
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)))
        write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, count))
    return raw


def test_cifar10_fixture_loads_with_split_and_normalisation(cifar10):
    dm = VisionDataModule("cifar10", data_dir=str(cifar10), batch_size=8, val_fraction=0.2)
    dm.setup()
    xs, ys = dm.splits["train"]
    assert xs.dtype == torch.uint8 and xs.shape[1:] == (3, 32, 32)
    assert len(xs) + len(dm.splits["val"][0]) == 100 and len(dm.splits["test"][0]) == 20
    x, y = next(iter(dm.val_dataloader()))
    assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32)
    # per-channel normalisation with the CIFAR-10 statistics
    raw = dm.splits["val"][0][: len(x)].float() / 255
    expected = (raw[:, 0] - 0.4914) / 0.2470
    torch.testing.assert_close(x[:, 0], expected)
    assert dm.spec.num_classes == 10 and dm.spec.embed_args["patch"] == 4


def test_mnist_and_fashion_fixtures_load(tmp_path):
    for name, cls in (("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")):
        write_mnist(tmp_path, cls)
        dm = VisionDataModule(name, data_dir=str(tmp_path), batch_size=4, patch=7)
        dm.setup()
        assert dm.splits["train"][0].shape[1:] == (1, 28, 28)
        assert len(dm.splits["test"][0]) == 20
        x, _ = next(iter(dm.train_dataloader()))
        assert x.shape == (4, 1, 28, 28)


def test_random_crop_flip_moves_pixels_but_keeps_content():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = random_crop_flip(x, pad=2, gen=g)
    assert out.shape == x.shape
    # every output pixel is either padding (0) or a pixel of the same image and channel
    for i in range(2):
        for c in range(3):
            assert set(out[i, c].flatten().tolist()) <= set(x[i, c].flatten().tolist()) | {0.0}
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(out, random_crop_flip(x, pad=2, gen=g2))  # seeded


def test_missing_dataset_is_one_clear_line(tmp_path):
    dm = VisionDataModule("cifar10", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as info:
        dm.setup()
    msg = str(info.value)
    assert "\n" not in msg
    assert "cifar-10-batches-py" in msg and "cifar-10-python.tar.gz" in msg


def test_corrupt_cifar_batch_is_reported(cifar10):
    batch = cifar10 / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])  # truncated
    with pytest.raises(DataError, match="missing or corrupt"):
        VisionDataModule("cifar10", data_dir=str(cifar10)).setup()


def test_truncated_mnist_idx_is_reported(tmp_path):
    raw = write_mnist(tmp_path)
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:500])
    with pytest.raises(DataError, match="mnist"):
        VisionDataModule("mnist", data_dir=str(tmp_path)).setup()


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match="allowed: cifar10, cifar100, mnist, fashion_mnist"):
        VisionDataModule("imagenet")


def test_cifar10_trains_end_to_end(cifar10, compose_cfg, tmp_path):
    from resnorm.training.run import run_job

    cfg = compose_cfg(
        "task=image_cifar10", f"task.data_dir={cifar10}", "trainer.max_steps=3",
        "task.val_every=3", "task.datamodule.batch_size=16", "model.dim=32", "model.depth=2",
    )  # fmt: skip
    summary = run_job(cfg, tmp_path / "run")
    assert summary["status"] == "completed"
    assert summary["steps"] == 3
    assert 0.0 <= summary["metrics"]["test/acc"] <= 1.0
