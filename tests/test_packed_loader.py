"""The packed training loader: member i reads exactly its solo run's batches."""

from __future__ import annotations

import pytest
import torch

from resnorm.data.audio import LogMelDataModule
from resnorm.data.digits import DigitsDataModule
from resnorm.data.loaders import TensorLoader
from resnorm.data.packed_loader import PackedLoader
from resnorm.data.split_loaders import packed_train_loader

SEEDS = [3, 5, 11]


def digits(seed: int = 0) -> DigitsDataModule:
    dm = DigitsDataModule(batch_size=64, seed=seed)
    dm.setup()
    return dm


def assert_member_batches(packed: list, solo: list[list]) -> None:
    assert len(packed) == len(solo[0])
    for step, batch in enumerate(packed):
        for i, member in enumerate(solo):
            for stacked, own in zip(batch, member[step], strict=True):
                assert stacked.shape[0] == len(solo)
                assert torch.equal(stacked[i], own)


def test_each_member_slice_is_the_batch_of_its_own_loader_every_epoch():
    dm = digits(seed=1)
    packed = dm.train_dataloader_packed(SEEDS)
    assert dm.seed == 1 and dm.train_dataloader().seed == 1  # the solo loader is unchanged
    solo = [digits(seed).train_dataloader() for seed in SEEDS]
    assert len(packed) == len(solo[0]) and packed.seeds == SEEDS
    for _ in range(2):  # a new order every epoch, for every member
        assert_member_batches(list(packed), [list(loader) for loader in solo])
    x, y = next(iter(packed))
    assert x.shape == (3, 64, 1, 8, 8) and y.shape == (3, 64)
    assert not torch.equal(y[0], y[1])  # the members' orders differ


def test_a_pack_of_one_is_the_solo_loader_with_a_member_dimension():
    packed = digits(seed=2).train_dataloader_packed([2])
    assert_member_batches(list(packed), [list(digits(seed=2).train_dataloader())])


class DigitSpectrograms(LogMelDataModule):
    """The speech tasks' data module (SpecAugment per run seed) on digit images as
    8-band, 8-frame spectrograms: no audio to synthesise."""

    def load_features(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {name: (x.squeeze(1), y) for name, (x, y) in digits().splits.items()}


def spectrograms(seed: int) -> DigitSpectrograms:
    masks = {"time_masks": 2, "time_width": 3, "freq_masks": 1, "freq_width": 2}
    dm = DigitSpectrograms(num_classes=10, batch_size=32, spec_augment=masks, seed=seed)
    dm.setup()
    return dm


def test_each_member_gets_its_own_augmentation_before_stacking():
    packed = packed_train_loader(spectrograms(seed=0), SEEDS)
    solo = [list(spectrograms(seed).train_dataloader()) for seed in SEEDS]
    batches = list(packed)
    assert_member_batches(batches, solo)
    masked = [(b[0] == 0).flatten(1).sum(1) for b in batches]
    assert all(m.min() > 0 for m in masked)  # every member's batch was masked...
    assert not all(torch.equal(x[0], x[1]) for x in masked)  # ...with its own masks


def test_resume_from_state_dict_yields_the_remaining_batches():
    ref = digits().train_dataloader_packed(SEEDS)
    expected = list(ref) + list(ref)  # two epochs
    run = digits().train_dataloader_packed(SEEDS)
    list(run)  # epoch 0 done
    it = iter(run)
    seen = [next(it), next(it), next(it)]  # three batches into epoch 1, then "killed"
    state = run.state_dict()
    assert state == {"epoch": 1, "position": 3}
    resumed = digits().train_dataloader_packed(SEEDS)
    resumed.load_state_dict(state)
    got = seen + list(resumed)
    assert len(got) == len(expected) - len(ref)
    for a, b in zip(got, expected[len(ref) :], strict=True):
        assert all(torch.equal(s, t) for s, t in zip(a, b, strict=True))
    assert resumed.state_dict() == {"epoch": 2, "position": 0}


def test_members_share_one_copy_of_the_data_on_the_loader_device():
    dm = digits()
    packed = dm.train_dataloader_packed(SEEDS)
    TensorLoader.keep_on(torch.device("meta"))
    try:
        x, y = next(iter(packed))
    finally:
        TensorLoader.keep_on(None)
    assert x.device.type == "meta" and x.shape == (3, 64, 1, 8, 8)
    shared = packed.loaders[0].tensors
    assert shared[0].device.type == "meta"
    assert all(loader.tensors is shared for loader in packed.loaders)
    assert dm.splits["train"][0].device.type == "cpu"  # the data module keeps its own


def test_members_must_read_the_same_data():
    x = torch.arange(40.0)
    a = TensorLoader(x, batch_size=8, shuffle=True, seed=0)
    with pytest.raises(ValueError, match="same data"):
        PackedLoader([a, TensorLoader(x + 1, batch_size=8, shuffle=True, seed=1)])
    with pytest.raises(ValueError, match="same data"):
        PackedLoader([a, TensorLoader(x, batch_size=4, shuffle=True, seed=1)])
    packed = PackedLoader([a, TensorLoader(x.clone(), batch_size=8, shuffle=True, seed=1)])
    assert packed.loaders[1].tensors is packed.loaders[0].tensors and len(packed) == 5
