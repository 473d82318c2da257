"""The full harness vs a plain PyTorch loop training the same model on the same batches.

Both build the model, data, AdamW and LR schedule through the same functions and clip
gradients alike; the harness adds Lightning, the CSV logger, the stability monitor with
probes at the default interval, and checkpointing. Validation is off in both (it is the
same work either way). Steps/s exclude the first 5 steps. Each round runs both loops, in
alternating order, and the ratio is taken within the round, where both saw the same machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from resnorm.bench.timing import sync, table
from resnorm.paths import conf_dir

SKIP = 5


def config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def plain_loop(cfg: DictConfig, device: torch.device) -> float:
    """Steps/s of a hand-written loop: forward, loss, backward, clip, step, schedule."""
    from resnorm.training.builders import build_datamodule, build_model
    from resnorm.training.optim import OPTIM_KEYS, build_optimizer

    torch.manual_seed(cfg.seed)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    model = build_model(cfg.model, dm.spec).to(device).train()
    optim = {k: cfg.optim[k] for k in OPTIM_KEYS}
    opt, sched = build_optimizer(model, total_steps=cfg.trainer.max_steps, **optim)
    loader = dm.train_dataloader().to(device)
    step, t0 = 0, 0.0
    while step < cfg.trainer.max_steps:
        for x, y in loader:
            if step == SKIP:
                sync(device)
                t0 = time.perf_counter()
            logits = model(x.unsqueeze(0))[0]  # a pack of one, as the harness trains it
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
            loss.backward()
            if cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step == cfg.trainer.max_steps:
                break
    sync(device)
    return (step - SKIP) / (time.perf_counter() - t0)


def harness(cfg: DictConfig) -> float:
    from resnorm.training.run import run_job

    with tempfile.TemporaryDirectory() as run_dir:
        summary = run_job(cfg, run_dir)
    return summary["throughput"]["train_steps_per_s"]


def bench_config(steps: int, device: str = "cpu", extra: list[str] | None = None) -> DictConfig:
    """The default task and model for ``steps`` steps, validation off, CSV logging."""
    trainer = "gpu" if device == "cuda" else "cpu"
    return config([
        f"trainer={trainer}", f"trainer.max_steps={steps}", f"trainer.val_every={steps + 1}",
        "logger=csv", *(extra or []),
    ])  # fmt: skip


def run(
    steps: int = 300, rounds: int = 3, device: str = "cpu", extra: list[str] | None = None
) -> list[dict[str, object]]:
    cfg = bench_config(steps, device, extra)
    dev = torch.device(device)
    loops = {"plain": lambda: plain_loop(cfg, dev), "harness": lambda: harness(cfg)}
    speeds: dict[str, list[float]] = {name: [] for name in loops}
    for i in range(rounds):  # the order alternates so that drift favours neither loop
        for name in list(loops)[:: 1 if i % 2 == 0 else -1]:
            speeds[name].append(loops[name]())
    plain, full = speeds["plain"], speeds["harness"]
    ratios = sorted(h / p for h, p in zip(full, plain, strict=True))
    return [
        {
            "task": cfg.task.name,
            "model (dim,depth)": f"{cfg.model.dim},{cfg.model.depth}",
            "device": device,
            "steps": steps,
            "rounds": rounds,
            "plain steps/s": statistics.median(plain),
            "harness steps/s": statistics.median(full),
            "harness/plain (median of rounds)": statistics.median(ratios),
            "min..max": f"{ratios[0]:.3f}..{ratios[-1]:.3f}",
        }
    ]


if __name__ == "__main__":
    print(table(run()))
