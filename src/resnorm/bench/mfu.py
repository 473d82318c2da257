"""Model FLOPs utilisation: achieved FLOP/s of a training step over the measured matmul peak.

FLOPs of one training step, counted from the shape (a multiply-add is 2 FLOPs; backward
costs twice the forward, so a step is 3x the forward):

    per layer forward = 8·B·T·d²            (Q, K, V and output projections)
                      + 4·B·T²·d            (QKᵀ and attention·V, full T² even when causal)
                      + 4·m·B·T·d²          (FFN with hidden size m·d)
    step = 3 · (depth · per-layer + 2·B·T·d·V_out)   (V_out: classes or vocabulary)

Norms, softmax, activations and the embedding are left out (they are memory-bound and
small), so MFU is slightly understated, as is the convention (Chowdhery et al. 2022).
"""

from __future__ import annotations

import time

import torch

from resnorm.bench.timing import sync


def train_step_flops(
    batch: int, seq: int, dim: int, depth: int, ffn_mult: float, out_features: int
) -> float:
    tokens = batch * seq
    layer = 8 * tokens * dim**2 + 4 * tokens * seq * dim + 4 * ffn_mult * tokens * dim**2
    return 3.0 * (depth * layer + 2 * batch * seq * dim * out_features)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int | None = None) -> float:
    """Best FLOP/s of an n×n matmul on this device and dtype (the ceiling we compare to)."""
    n = n or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    best = float("inf")
    reps = 20 if device.type == "cuda" else 5
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * n**3 / best
