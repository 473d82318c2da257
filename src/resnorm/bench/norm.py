"""The norms themselves at realistic widths: forward + backward time of each ``model.norm``
against LayerNorm, on the device at hand.

This is the cost part of claim (h), "RMSNorm is cheaper than LayerNorm" (Zhang & Sennrich
2019), measured where it is meant: a layer of width 512–4096 over a realistic number of
tokens, not a dim-64 study run in which a norm is a sliver of the step. Each norm is the
harness's own module (``resnorm.models.norms``), timed interleaved with the others.
"""

from __future__ import annotations

import torch

from resnorm.bench.timing import time_interleaved
from resnorm.models.norms import build_norm

WIDTHS = (512, 1024, 2048, 4096)
NORMS = ("layernorm", "rmsnorm", "dyt")
TOKENS = 8192  # e.g. batch 8 x sequence 1024


def _step(norm: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor):
    def step() -> None:
        x.grad = None
        norm.zero_grad(set_to_none=True)
        norm(x).backward(grad)

    return step


def run(
    device: str, dtype: str = "fp32", widths: tuple[int, ...] = WIDTHS, tokens: int = TOKENS
) -> list[dict[str, object]]:
    dev = torch.device(device)
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    rows = []
    for width in widths:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(tokens, width, generator=g).to(dev, dt).requires_grad_()
        grad = torch.randn(tokens, width, generator=g).to(dev, dt)
        fns = {n: _step(build_norm(n, width).to(dev, dt), x, grad) for n in NORMS}
        t = time_interleaved(fns, dev, warmup=3, iters=10, rounds=5)
        row: dict[str, object] = {"width": width, "tokens": tokens}
        for n in NORMS:
            row[f"{n} ms"] = 1e3 * t[n]
        for n in NORMS[1:]:
            row[f"{n} / layernorm"] = t[n] / t["layernorm"]
        rows.append(row)
    return rows
