"""Our Encoder vs ``torch.nn.TransformerEncoder``: forward+backward step time.

Same pre/post configuration, shapes, dtype, activation (ReLU, torch's default) and
dropout 0; both get the same input and a sum-of-outputs loss.
"""

from __future__ import annotations

import torch
from torch import nn

from resnorm.bench.timing import table, time_interleaved
from resnorm.models import Encoder


def torch_encoder(dim: int, depth: int, heads: int, ffn_mult: int, pre: bool) -> nn.Module:
    layer = nn.TransformerEncoderLayer(
        dim, heads, dim * ffn_mult, dropout=0.0, activation="relu", batch_first=True,
        norm_first=pre,
    )  # fmt: skip
    # enable_nested_tensor only applies to padded inference; keep the plain path.
    final = nn.LayerNorm(dim) if pre else None
    return nn.TransformerEncoder(layer, depth, norm=final, enable_nested_tensor=False)


def step_fn(model: nn.Module, x: torch.Tensor, dtype: torch.dtype | None):
    def step() -> None:
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            y = model(x)
        y.float().sum().backward()
        for p in model.parameters():
            p.grad = None

    return step


def run(
    dim: int = 64,
    depth: int = 4,
    heads: int = 4,
    ffn_mult: int = 4,
    batch: int = 64,
    seq: int = 17,
    device: str = "cpu",
    dtype: str = "fp32",
    iters: int = 20,
) -> list[dict[str, object]]:
    dev = torch.device(device)
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    rows = []
    for position in ("pre", "post"):
        torch.manual_seed(0)
        ours = Encoder(dim, depth, heads, ffn_mult, norm_position=position, activation="relu")
        theirs = torch_encoder(dim, depth, heads, ffn_mult, position == "pre")
        ours, theirs = ours.to(dev).train(), theirs.to(dev).train()
        x = torch.randn(batch, seq, dim, device=dev)
        t = time_interleaved(
            {"ours": step_fn(ours, x, amp), "torch": step_fn(theirs, x, amp)}, dev, iters=iters
        )
        rows.append(
            {
                "norm_position": position,
                "shape (B,T,dim,depth)": f"{batch},{seq},{dim},{depth}",
                "device/dtype": f"{device}/{dtype}",
                "ours ms": t["ours"] * 1e3,
                "torch ms": t["torch"] * 1e3,
                "ours/torch": t["ours"] / t["torch"],
            }
        )
    return rows


if __name__ == "__main__":
    print(table(run()))
