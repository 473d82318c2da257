"""AdamW step time on the default model's parameters: per-tensor loop, foreach, fused.

The gradients are fixed random tensors, so only the optimizer's own work is timed; the
"default" row is what ``build_optimizer`` picks for the device (``optim.fused=null``).
"""

from __future__ import annotations

import torch

from resnorm.bench.timing import time_interleaved
from resnorm.training.optim import build_optimizer

KINDS = {"per-tensor loop": {"foreach": False}, "foreach": {"foreach": True},
         "fused": {"fused": True}}  # fmt: skip


def run(device: str = "cpu", overrides: list[str] | None = None) -> list[dict[str, object]]:
    from resnorm.bench.harness import config
    from resnorm.training.builders import build_datamodule, build_model

    cfg = config(overrides or [])
    dev = torch.device(device)
    dm = build_datamodule(cfg)
    model = build_model(cfg.model, dm.spec).to(dev)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    # a fresh parameter list each: an optimizer writes its options into group dicts it gets
    opts = {name: torch.optim.AdamW(list(model.parameters()), lr=1e-3, **kw)
            for name, kw in KINDS.items()}  # fmt: skip
    opts["default"], _ = build_optimizer(model, lr=1e-3, weight_decay=0.05)
    times = time_interleaved({k: o.step for k, o in opts.items()}, dev, iters=50, rounds=7)
    base = times["per-tensor loop"]
    n = sum(p.numel() for p in model.parameters())
    return [
        {"optimizer": name, "params": n, "device": device, "ms/step": t * 1e3,
         "vs per-tensor loop": t / base}
        for name, t in times.items()
    ]  # fmt: skip
