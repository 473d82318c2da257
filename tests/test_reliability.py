"""Faults around a run: unreachable W&B, secrets, full disks, hostile checkpoints, determinism."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

RESNORM = [sys.executable, "-m", "resnorm.cli", "train"]
BASE = {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
BASE.pop("WANDB_MODE", None)


def train(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*RESNORM, *args], env=env or {**BASE, "WANDB_MODE": "offline"},
                          capture_output=True, text=True, timeout=600, **kw)  # fmt: skip


@pytest.mark.slow
def test_bogus_wandb_key_without_network_falls_back_offline_and_leaks_no_secret(tmp_path):
    key, token = "f" * 36 + "beef", "sentinel-token-8c1e"
    env = {**BASE, "WANDB_API_KEY": key, "RESNORM_TEST_TOKEN": token, "HF_TOKEN": token}
    run = tmp_path / "run"
    t0 = time.time()
    out = train("logger=wandb", "logger.init_timeout=5", "trainer.max_steps=10",
                "task.val_every=10", f"hydra.run.dir={run}", env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert time.time() - t0 < 240  # bounded: no hanging on the network
    assert "logging offline instead" in out.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert list(run.glob("wandb/offline-run-*"))
    for path in run.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key.encode() not in data and token.encode() not in data, path


def limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.slow
def test_disk_full_while_checkpointing_fails_cleanly(tmp_path):
    run = tmp_path / "run"
    out = train("trainer.max_steps=10", "task.val_every=10", f"hydra.run.dir={run}",
                preexec_fn=limit_file_size)  # fmt: skip
    assert out.returncode != 0
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("resnorm: error:")]
    assert len(errors) == 1 and "File too large" in errors[0], out.stderr
    summary = json.loads((run / "summary.json").read_text())  # whole, parseable JSON
    assert summary["status"] == "failed" and "File too large" in summary["error"]
    assert not list(run.glob(".summary.json.*"))  # no temp file left behind


def test_unwritable_run_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a directory should be")
    out = train(f"hydra.run.dir={blocker / 'run'}")
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("resnorm: error:"), out.stderr


class Payload:
    """Anything that is not plain tensors and containers: weights_only must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoints_load_with_weights_only(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}, "payload": Payload()}, run / "checkpoints" / "last.ckpt")
    out = train("trainer.max_steps=5", f"hydra.run.dir={run}")
    assert out.returncode != 0
    assert "pwned" not in out.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "weights_only" in summary["error"].lower()


@pytest.mark.slow
def test_same_seed_and_config_give_identical_metrics_on_cpu(tmp_path):
    summaries = []
    for name in ("a", "b"):
        out = train("trainer.max_steps=30", "task.val_every=15", "model.dropout=0.1",
                    f"hydra.run.dir={tmp_path / name}")  # fmt: skip
        assert out.returncode == 0, out.stderr
        summaries.append(json.loads((tmp_path / name / "summary.json").read_text()))
    a, b = summaries
    assert a["metrics"] == b["metrics"] and a["run_key"] == b["run_key"]
    assert a["stability"]["grad_norm_max"] == b["stability"]["grad_norm_max"]
    other = train("trainer.max_steps=30", "task.val_every=15", "model.dropout=0.1", "seed=1",
                  f"hydra.run.dir={tmp_path / 'c'}")  # fmt: skip
    c = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert other.returncode == 0 and c["metrics"] != a["metrics"]


def test_secrets_never_enter_the_summary(tmp_path):
    token = "sentinel-key-55aa"
    env = {**BASE, "WANDB_MODE": "offline", "WANDB_API_KEY": token, "SOME_SERVICE_TOKEN": token}
    run = tmp_path / "run"
    out = train("trainer.max_steps=3", "task.val_every=3", f"hydra.run.dir={run}", env=env)
    assert out.returncode == 0, out.stderr
    for path in Path(run).rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
