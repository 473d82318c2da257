"""Lightning DDP on CPU: 2 processes over gloo, one summary, shards that partition the data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}


@pytest.mark.slow
def test_ddp_trains_on_two_cpu_processes(tmp_path):
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "resnorm.cli", "train", "trainer=ddp", "trainer.accelerator=cpu",
         "trainer.devices=2", "trainer.precision=32-true", "trainer.num_threads=1",
         "trainer.max_steps=20", "task.val_every=10", f"hydra.run.dir={run}"],
        env=ENV, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 20
    assert summary["config"]["trainer"]["strategy"] == "ddp"
    assert 0.0 <= summary["metrics"]["test/acc"] <= 1.0


def test_loader_shards_are_disjoint_and_cover_an_epoch():
    import torch

    from resnorm.data.loaders import TensorLoader

    x = torch.arange(103)
    seen = []
    for rank in (0, 1):
        train = TensorLoader(x, batch_size=10, shuffle=True, seed=0, shard=(rank, 2))
        seen.append(torch.cat([b[0] for b in train]).tolist())
        evals = TensorLoader(x, batch_size=10, shard=(rank, 2))
        assert torch.cat([b[0] for b in evals]).tolist() == list(range(rank, 103, 2))
    assert len(seen[0]) == len(seen[1]) == 51  # equal shards: every rank steps alike
    assert not set(seen[0]) & set(seen[1])
