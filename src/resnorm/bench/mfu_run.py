"""MFU of our model's training step (forward, backward, AdamW) at a given shape.

A causal LM over random tokens: the same Encoder, attention kernel and optimizer as a
harness run, with shapes chosen freely (GPU default: dim 768, depth 12, seq 256).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from resnorm.bench.mfu import matmul_peak, train_step_flops
from resnorm.bench.timing import time_interleaved
from resnorm.models import LanguageModel
from resnorm.training.optim import build_optimizer

GPU_SHAPE = {"dim": 768, "depth": 12, "heads": 12, "seq": 256, "batch": 32, "vocab": 256}
CPU_SHAPE = {"dim": 64, "depth": 4, "heads": 4, "seq": 64, "batch": 32, "vocab": 96}


def make_step(
    dev: torch.device, amp: torch.dtype | None, s: dict[str, int], compile_: bool
) -> Callable[[], None]:
    """One training step (forward, loss, backward, AdamW) of a fresh model of shape ``s``."""
    torch.manual_seed(0)
    model = LanguageModel(s["vocab"], s["seq"], dim=s["dim"], depth=s["depth"],
                          heads=s["heads"], norm_position="pre").to(dev)  # fmt: skip
    if compile_:
        model.compile()
    opt, _ = build_optimizer(model, lr=1e-4, weight_decay=0.0)
    x = torch.randint(0, s["vocab"], (s["batch"], s["seq"]), device=dev)

    def step() -> None:
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            logits = model(x)
        F.cross_entropy(logits.reshape(-1, s["vocab"]).float(), x.reshape(-1)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def run(device: str, dtype: str, compile_: bool = False) -> list[dict[str, object]]:
    """Eager (and compiled) steps timed interleaved, over one matmul peak measured once."""
    dev = torch.device(device)
    s = GPU_SHAPE if device == "cuda" else CPU_SHAPE
    amp = torch.bfloat16 if dtype == "bf16" else None
    modes = (False, True) if compile_ else (False,)
    steps = {c: make_step(dev, amp, s, c) for c in modes}
    times = time_interleaved(steps, dev, warmup=10 if compile_ else 5, iters=10)
    flops = train_step_flops(s["batch"], s["seq"], s["dim"], s["depth"], 4, s["vocab"])
    peak = matmul_peak(dev, amp or torch.float32)
    return [
        {
            "shape (B,T,dim,depth)": f"{s['batch']},{s['seq']},{s['dim']},{s['depth']}",
            "device/dtype": f"{dev.type}/{dtype}",
            "compile": c,
            "step ms": t * 1e3,
            "achieved TFLOP/s": flops / t / 1e12,
            "matmul peak TFLOP/s": peak / 1e12,
            "MFU": flops / t / peak,
        }
        for c, t in times.items()
    ]
