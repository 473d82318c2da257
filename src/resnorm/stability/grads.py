"""Gradient norms (global, per layer, per sublayer) and update-to-weight ratios.

Functions that return tensors stay on the device (no host sync); those that return
Python lists move everything to the host in one transfer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from resnorm.stability.layers import SUBLAYER_NAMES, find_blocks, probe_mode, sublayer_params

LossFn = Callable[[nn.Module, Any], torch.Tensor]


def total_norm(
    tensors: Iterable[torch.Tensor | None], device: torch.device | None = None
) -> torch.Tensor:
    """L2 norm of the concatenation of ``tensors`` (``None`` entries skipped), on device."""
    present = [t for t in tensors if t is not None]
    if not present:
        return torch.zeros((), device=device)
    return torch.nn.utils.get_total_norm(present, norm_type=2.0)


def global_grad_norm(model: nn.Module) -> torch.Tensor:
    """Norm of all current gradients (call before clipping). A device tensor: no sync."""
    return total_norm((p.grad for p in model.parameters()), _device(model))


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _profile(norms: list[dict[str, torch.Tensor]]) -> dict[str, list[float]]:
    """Per-layer {attn, ffn} norms -> {attn: [L], ffn: [L], block: [L]} in one transfer."""
    attn = torch.stack([n["attn"].float() for n in norms])
    ffn = torch.stack([n["ffn"].float() for n in norms])
    block = torch.sqrt(attn.square() + ffn.square())
    values = torch.stack([attn, ffn, block]).cpu().tolist()
    return dict(zip((*SUBLAYER_NAMES, "block"), values, strict=True))


def layer_grad_norms(model: nn.Module) -> dict[str, list[float]]:
    """Per-layer and per-sublayer norms of the gradients currently in ``.grad``."""
    dev = _device(model)
    norms = [
        {name: total_norm((p.grad for p in params), dev) for name, params in groups.items()}
        for groups in map(sublayer_params, find_blocks(model))
    ]
    return _profile(norms)


def grad_norm_profile(model: nn.Module, loss_fn: LossFn, batch: Any) -> dict[str, Any]:
    """Per-layer gradient norms of ``loss_fn(model, batch)`` without touching ``.grad``.

    Uses ``torch.autograd.grad`` in eval mode, so it can run at initialisation (before
    any optimizer step, Xiong et al. 2020) or mid-training with nothing left behind.
    """
    groups = [sublayer_params(b) for b in find_blocks(model)]
    flat = [p for g in groups for name in SUBLAYER_NAMES for p in g[name]]
    with probe_mode(model), torch.enable_grad():
        loss = loss_fn(model, batch)
        grads = iter(torch.autograd.grad(loss, flat, allow_unused=True))
    dev = _device(model)
    norms = [{name: total_norm([next(grads) for _ in g[name]], dev) for name in SUBLAYER_NAMES}
             for g in groups]  # fmt: skip
    return {**_profile(norms), "loss": float(loss.detach())}


def snapshot_block_params(model: nn.Module) -> list[list[torch.Tensor]]:
    """Copies of each block's parameters, to measure the next update against."""
    return [[p.detach().clone() for p in b.parameters()] for b in find_blocks(model)]


def update_to_weight_ratio(model: nn.Module, before: list[list[torch.Tensor]]) -> list[float]:
    """Per layer ||W_after - W_before|| / ||W_before|| over all of the block's parameters."""
    ratios = []
    for block, old in zip(find_blocks(model), before, strict=True):
        new = [p.detach() for p in block.parameters()]
        delta = total_norm([n - o for n, o in zip(new, old, strict=True)])
        ratios.append(delta / total_norm(old).clamp_min(torch.finfo(torch.float32).tiny))
    return torch.stack(ratios).float().cpu().tolist()
