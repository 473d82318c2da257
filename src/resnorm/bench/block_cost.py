"""What residual connections and LayerNorm cost: one Transformer block, four ways.

Forward + backward of the project's own ``Block`` at realistic widths, in four
configurations that differ only by the skip path and the norms:

    pre_ln       residual on,  LayerNorm pre   x + F(N(x)) around attention and FFN
    no_norm      residual on,  no norm         x + F(x)
    no_residual  residual off, LayerNorm pre   F(N(x))
    plain        residual off, no norm         F(x)

pre_ln / no_norm is the cost of the two norms, pre_ln / no_residual the cost of the two
residual adds, pre_ln / plain the cost of both. The input requires grad, as it does inside
a stack, so the backward of each residual add (its gradient sum) is timed too. All four
blocks are timed in one process, round after round with the order alternating, and each
ratio is taken within a round, where all four saw the same machine.
"""

from __future__ import annotations

import statistics

import torch

from resnorm.bench.timing import table, time_interleaved
from resnorm.models.block import Block

WIDTHS = (512, 1024, 2048)
HEAD_DIM = 64  # heads = width / 64, as in BERT and GPT-2
CONFIGS = {
    "pre_ln": {"residual": "on", "norm_position": "pre"},
    "no_norm": {"residual": "on", "norm_position": "none"},
    "no_residual": {"residual": "off", "norm_position": "pre"},
    "plain": {"residual": "off", "norm_position": "none"},
}
RATIOS = {
    "pre_ln / plain": "plain",  # residuals and norms together
    "pre_ln / no_norm": "no_norm",  # the two LayerNorms
    "pre_ln / no_residual": "no_residual",  # the two residual adds
}


def build(name: str, width: int) -> Block:
    """The block of configuration ``name`` at ``width`` (the Block defaults otherwise: GELU
    FFN of 4·width, no dropout, bidirectional attention)."""
    heads = max(1, width // HEAD_DIM)
    while width % heads:  # a width that is not a multiple of 64 gets fewer, wider heads
        heads -= 1
    return Block(width, heads, **CONFIGS[name])


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _step(block: Block, x: torch.Tensor, grad: torch.Tensor, amp: torch.dtype | None):
    def step() -> None:
        x.grad = None
        block.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            y = block(x)
        y.backward(grad.to(y.dtype))  # under autocast y is bf16

    return step


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}..{max(values):.3f}"


def run(
    device: str = "cpu",
    dtype: str = "fp32",
    widths: tuple[int, ...] = WIDTHS,
    batch: int = 2,
    seq: int = 128,
    rounds: int = 7,
    iters: int = 1,
    warmup: int = 1,
) -> list[dict[str, object]]:
    """One row per width: median ms per step of each configuration, the within-round
    ratios (median and min..max over rounds), and each configuration's parameter count."""
    dev = torch.device(device)
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    rows = []
    for width in widths:
        torch.manual_seed(0)
        blocks = {name: build(name, width).to(dev).train() for name in CONFIGS}
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, seq, width, generator=g).to(dev).requires_grad_()
        grad = torch.randn(batch, seq, width, generator=g).to(dev)
        fns = {name: _step(b, x, grad, amp) for name, b in blocks.items()}
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        samples: dict[str, list[float]] = {name: [] for name in fns}
        for r in range(rounds):  # the order alternates so that drift favours no config
            order = list(fns)[:: 1 if r % 2 == 0 else -1]
            t = time_interleaved({n: fns[n] for n in order}, dev, warmup=0, iters=iters, rounds=1)
            for name, seconds in t.items():
                samples[name].append(seconds)
        row: dict[str, object] = {"width": width, "B×T": f"{batch}×{seq}"}
        for name, s in samples.items():
            row[f"{name} ms"] = 1e3 * statistics.median(s)
        for label, base in RATIOS.items():
            ratios = [a / b for a, b in zip(samples["pre_ln"], samples[base], strict=True)]
            row[label] = statistics.median(ratios)
            row[f"{label} range"] = _spread(ratios)
        for name, b in blocks.items():
            row[f"{name} params"] = param_count(b)
        rows.append(row)
    return rows


def report(rows: list[dict[str, object]]) -> str:
    """Two Markdown tables: time per step with the ratios, then the parameter counts."""
    time_keys = [k for k in rows[0] if not k.endswith(" params")]
    timing = table([{k: r[k] for k in time_keys} for r in rows])
    params = []
    for r in rows:
        width = int(r["width"])  # type: ignore[call-overload]
        p = {name: int(r[f"{name} params"]) for name in CONFIGS}  # type: ignore[call-overload]
        params.append(
            {
                "width": width,
                **{f"{name} params": n for name, n in p.items()},
                "pre_ln − no_norm": p["pre_ln"] - p["no_norm"],
                "= 4·d": 4 * width,
                "norm share": f"{(p['pre_ln'] - p['no_norm']) / p['pre_ln']:.4%}",
            }
        )
    return timing + "\n\nParameters per block (residual adds own none):\n\n" + table(params)
