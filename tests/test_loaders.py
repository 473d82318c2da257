"""The in-memory batch loader: seeded order, epochs, and resumable position."""

from __future__ import annotations

import torch

from resnorm.data.loaders import TensorLoader


def batches(loader: TensorLoader) -> list[torch.Tensor]:
    return [b[0] for b in loader]


def test_shuffled_order_is_seeded_and_changes_every_epoch():
    x = torch.arange(100)
    a = TensorLoader(x, batch_size=10, shuffle=True, seed=3)
    b = TensorLoader(x, batch_size=10, shuffle=True, seed=3)
    first, second = batches(a), batches(a)
    assert [t.tolist() for t in first] == [t.tolist() for t in batches(b)]
    assert torch.cat(first).sort().values.tolist() == list(range(100))  # a permutation
    assert torch.cat(first).tolist() != torch.cat(second).tolist()  # a new epoch, a new order
    other = TensorLoader(x, batch_size=10, shuffle=True, seed=4)
    assert torch.cat(batches(other)).tolist() != torch.cat(first).tolist()


def test_lengths_and_drop_last():
    x = torch.arange(25)
    assert len(TensorLoader(x, batch_size=10)) == 3
    assert [len(t) for t in batches(TensorLoader(x, batch_size=10))] == [10, 10, 5]
    assert len(TensorLoader(x, batch_size=10, shuffle=True, drop_last=True)) == 2


def test_resume_from_state_dict_yields_the_remaining_batches():
    x = torch.arange(60)
    ref = TensorLoader(x, batch_size=10, shuffle=True, seed=1)
    ref_batches = batches(ref) + batches(ref)  # two epochs
    run = TensorLoader(x, batch_size=10, shuffle=True, seed=1)
    batches(run)  # epoch 0 done
    it = iter(run)
    seen = [next(it)[0], next(it)[0]]  # two batches into epoch 1, then "killed"
    state = run.state_dict()
    resumed = TensorLoader(x, batch_size=10, shuffle=True, seed=1)
    resumed.load_state_dict(state)
    rest = batches(resumed)
    got = [t.tolist() for t in seen + rest]
    assert got == [t.tolist() for t in ref_batches[6:]]


def test_transform_is_applied_per_batch():
    x, y = torch.arange(8).float(), torch.arange(8)
    loader = TensorLoader(x, y, batch_size=4, transform=lambda b: (b[0] * 2, b[1]))
    out = list(loader)
    assert out[0][0].tolist() == [0.0, 2.0, 4.0, 6.0] and out[0][1].tolist() == [0, 1, 2, 3]
