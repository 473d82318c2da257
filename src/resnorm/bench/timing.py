"""Timing helpers: warm up, synchronise the device, interleave, report medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    fns: dict[str, Callable[[], None]],
    device: torch.device,
    warmup: int = 5,
    iters: int = 20,
    rounds: int = 5,
) -> dict[str, float]:
    """Median seconds per call of each fn, rounds interleaved so drift hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            sync(device)
            samples[name].append((time.perf_counter() - t0) / iters)
    return {name: statistics.median(v) for name, v in samples.items()}


def table(rows: list[dict[str, object]]) -> str:
    """A Markdown table of dict rows (all with the same keys)."""
    keys = list(rows[0])
    fmt = [
        " | ".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys)
        for r in rows
    ]
    return "\n".join(
        ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)] + [f"| {f} |" for f in fmt]
    )
