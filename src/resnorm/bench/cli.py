"""``resnorm bench <which>``: Markdown tables of ratios measured side by side."""

from __future__ import annotations

import argparse
import platform

import torch


def machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="resnorm bench", description=__doc__)
    benches = [
        "block", "harness", "mfu", "sweep", "precision", "wait_policy", "optimizer", "pack",
        "norm",
    ]  # fmt: skip
    p.add_argument("which", choices=benches)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, help="fp32 | bf16 (block, mfu, norm)")
    p.add_argument("--steps", type=int, default=300, help="harness, pack: steps per run")
    p.add_argument("--rounds", type=int, default=3, help="harness, pack: interleaved rounds")
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

        rows = harness.run(a.steps, a.rounds, a.device, a.overrides)
    elif a.which == "precision":
        from resnorm.bench import precision

        rows = precision.run(a.device)
    elif a.which == "mfu":
        from resnorm.bench import mfu_run

        rows = mfu_run.run(a.device, dtype, compile_=a.compile)
    elif a.which == "pack":
        from resnorm.bench import pack

        rows = pack.run(a.device, a.steps, a.rounds, a.overrides)
    elif a.which == "norm":
        from resnorm.bench import norm

        rows = norm.run(a.device, dtype if a.dtype else "fp32")
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

    print(f"machine: {machine(a.device)}; torch {torch.__version__}")
    print(table(rows))
    if a.which == "pack":
        best = max(rows, key=lambda r: float(r["per-model speed-up"]))
        print(f"fastest per model on this device: pack={best['members']}")
    return 0
