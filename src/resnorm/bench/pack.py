"""Packed training against one model alone: per-model step time at k = 1, 2, 4, ... members.

Each pack is a real training job (``run_pack``: Lightning, the stability probes at their
default interval, CSV logs) of k seeds of one configuration; the sizes take turns within
each round so that drift of the machine's speed hits all of them alike. The per-model step
time is the pack's step time divided by k; the speed-up is one model alone over that.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence

from hydra import compose, initialize_config_dir

from resnorm.paths import conf_dir

SIZES = (1, 2, 4, 8, 16)


def _configs(k: int, steps: int, device: str, overrides: Sequence[str]) -> list:
    trainer = "trainer=gpu" if device == "cuda" else "trainer=cpu"
    base = [trainer, f"trainer.max_steps={steps}", f"trainer.val_every={steps}",
            "logger=csv", *overrides]  # fmt: skip
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return [compose("train", overrides=[*base, f"seed={s}"]) for s in range(k)]


def run(
    device: str, steps: int, rounds: int, overrides: Sequence[str], sizes: Sequence[int] = SIZES
) -> list[dict[str, object]]:
    from resnorm.training.run import run_pack  # lazy: imports Lightning

    samples: dict[int, list[float]] = {k: [] for k in sizes}
    for _ in range(rounds):
        for k in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                dirs = [f"{tmp}/m{i}" for i in range(k)]
                out = run_pack(_configs(k, steps, device, overrides), dirs, pack_id=f"k{k}")
            samples[k].append(1.0 / out[0]["throughput"]["train_steps_per_s"])
    step = {k: statistics.median(v) for k, v in samples.items()}
    alone = step[min(sizes)] / min(sizes)
    return [
        {
            "members": k,
            "pack step ms": 1e3 * step[k],
            "per-model step ms": 1e3 * step[k] / k,
            "per-model speed-up": alone / (step[k] / k),
        }  # fmt: skip
        for k in sizes
    ]
