"""Packed models: k runs of one architecture as one model with a leading member dimension.

Every parameter of a model built with ``members=k`` has shape ``(k, *solo_shape)`` (k = 1
included) and every activation carries the member dimension first, so member i computes
what its solo model computes. These helpers move weights between a pack and its solo
models: ``stack_members`` builds a pack's init from k solo inits, ``member_view`` lets the
unchanged k = 1 code (probes, Admin's profiling pass, per-member checkpoints) run on one
member in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def member_broadcast(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``p`` of shape (k, *s) ready to broadcast against ``x`` of shape (k, ..., *s).

    A pack of one uses ``p[0]``, the solo shape: the very op (and gradient reduction) of a
    model without a member dimension, whatever leading dimensions ``x`` has.
    """
    if p.shape[0] == 1:
        return p[0]
    return p.view(p.shape[0], *(1,) * (x.ndim - p.ndim), *p.shape[1:])


def members_of(model: nn.Module) -> int:
    """The member count of a model (the leading dimension its parameters share)."""
    counts = {p.shape[0] for p in model.parameters() if p.ndim}
    if len(counts) != 1:
        raise ValueError(f"parameters of {type(model).__name__} disagree on members: {counts}")
    return counts.pop()


def _check_same_architecture(pack: nn.Module, solo: nn.Module) -> None:
    ours = {n: p.shape[1:] for n, p in pack.named_parameters()}
    theirs = {n: p.shape[1:] for n, p in solo.named_parameters()}
    if ours != theirs or any(p.shape[0] != 1 for p in solo.parameters()):
        raise ValueError("a member must be a members=1 model of the pack's architecture")


@torch.no_grad()
def stack_members(pack: nn.Module, solos: Sequence[nn.Module]) -> None:
    """Copy k solo (members=1) models into the k-member ``pack``: member i = ``solos[i]``.

    Buffers with a member dimension are copied too; member-free ones (DeepNorm's constant
    α) must agree.
    """
    k = members_of(pack)
    if len(solos) != k:
        raise ValueError(f"a pack of {k} members takes {k} solo models, got {len(solos)}")
    for solo in solos:
        _check_same_architecture(pack, solo)
    params = [dict(s.named_parameters()) for s in solos]
    for name, p in pack.named_parameters():
        p.copy_(torch.cat([ps[name] for ps in params]))
    buffers = [dict(s.named_buffers()) for s in solos]
    for name, b in pack.named_buffers():
        theirs = [bs[name] for bs in buffers]
        if b.shape == theirs[0].shape:
            if not all(torch.equal(b, t) for t in theirs):
                raise ValueError(f"buffer {name} differs between members but has no member dim")
        else:
            b.copy_(torch.cat(theirs))


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


def member_view(pack: nn.Module, solo: nn.Module, i: int) -> nn.Module:
    """Make ``solo`` (a fresh members=1 model of the pack's architecture) member ``i``.

    Each solo parameter is replaced by an ``nn.Parameter`` viewing ``pack_param.data[i:i+1]``:
    in-place changes go both ways (an optimizer step on the pack shows in the view, Admin's
    ω profiled on the view shows in the pack). Make views after moving the pack to its
    device: moving replaces parameter storage. Returns ``solo``.
    """
    k = members_of(pack)
    if not 0 <= i < k:
        raise IndexError(f"member {i} of a pack of {k}")
    _check_same_architecture(pack, solo)
    for name, p in pack.named_parameters():
        owner, leaf = _owner(solo, name)
        setattr(owner, leaf, nn.Parameter(p.data[i : i + 1], requires_grad=p.requires_grad))
    for name, b in pack.named_buffers():
        owner, leaf = _owner(solo, name)
        if b.shape != getattr(owner, leaf).shape:  # a buffer with a member dimension
            setattr(owner, leaf, b[i : i + 1])
    return solo


def share_member_grads(pack: nn.Module, view: nn.Module, i: int) -> None:
    """Point each ``.grad`` of ``view`` (see ``member_view``) at member i of the pack's.

    After the pack's backward, per-layer gradient probes read member i's gradients of the
    training batch through the view; a parameter without a gradient gets None.
    """
    views = dict(view.named_parameters())
    for name, p in pack.named_parameters():
        views[name].grad = None if p.grad is None else p.grad[i : i + 1]
