"""``resnorm bench <which>``: Markdown tables of ratios measured side by side."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from resnorm.bench import BENCHES


def machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="resnorm bench", description=__doc__)
    p.add_argument("which", choices=BENCHES)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, help="fp32 | bf16 (block, mfu, norm, block_cost)")
    p.add_argument("--steps", type=int, default=300, help="harness, pack: steps per run")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds (harness, pack: 3; block_cost: 7)")  # fmt: skip
    p.add_argument("--widths", type=int, nargs="+", default=None, help="block_cost: model widths")
    p.add_argument("--batch", type=int, default=2, help="block_cost: sequences per step")
    p.add_argument("--seq", type=int, default=128, help="block_cost: tokens per sequence")
    p.add_argument("--iters", type=int, default=1, help="block_cost: steps per round")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    p.add_argument("--compile", action="store_true", help="mfu: also time torch.compile")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for harness and sweep")
    a = p.parse_intermixed_args(argv)  # overrides may come before or after the options
    dtype = a.dtype or ("bf16" if a.device == "cuda" else "fp32")
    if a.which == "block":
        from resnorm.bench import block

        shapes = {"dim": 768, "depth": 12, "heads": 12, "batch": 16, "seq": 256}
        rows = block.run(device=a.device, dtype=dtype) + (
            block.run(device=a.device, dtype=dtype, **shapes) if a.device == "cuda" else []
        )
    elif a.which == "harness":
        from resnorm.bench import harness

        rows = harness.run(a.steps, a.rounds or 3, a.device, a.overrides)
    elif a.which == "precision":
        from resnorm.bench import precision

        rows = precision.run(a.device)
    elif a.which == "mfu":
        from resnorm.bench import mfu_run

        rows = mfu_run.run(a.device, dtype, compile_=a.compile)
    elif a.which == "pack":
        from resnorm.bench import pack

        rows = pack.run(a.device, a.steps, a.rounds or 3, a.overrides)
    elif a.which == "norm":
        from resnorm.bench import norm

        rows = norm.run(a.device, dtype if a.dtype else "fp32")
    elif a.which == "block_cost":
        from resnorm.bench import block_cost

        widths = tuple(a.widths or block_cost.WIDTHS)
        rows = block_cost.run(a.device, dtype if a.dtype else "fp32", widths, a.batch, a.seq,
                              rounds=a.rounds or 7, iters=a.iters)  # fmt: skip
    elif a.which == "optimizer":
        from resnorm.bench import optimizer

        rows = optimizer.run(a.device, a.overrides)
    elif a.which == "wait_policy":
        from resnorm.bench import wait_policy

        rows = wait_policy.run()
    else:
        from resnorm.bench import sweep

        rows = sweep.run(extra=a.overrides)
    from resnorm.bench.timing import table

    where = f"{machine(a.device)}; torch {torch.__version__}"
    print(f"machine: {where}")
    if a.which == "block_cost":
        print(block_cost.report(rows))
    else:
        print(table(rows))
    if a.json is not None:
        a.json.write_text(json.dumps({"bench": a.which, "machine": where, "rows": rows}, indent=1))
    if a.which == "pack":
        best = max(rows, key=lambda r: float(r["per-model speed-up"]))
        print(f"fastest per model on this device: pack={best['members']}")
    return 0
