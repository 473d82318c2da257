"""Checkpoints by steps, by minutes of training and at the end, always as ``last.ckpt``.

Real runs on the embedded digits task: both triggers in one run, a relaunch of a finished
run, and a default-config run SIGKILLed after its first timed checkpoint and relaunched.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import wait_for
from resnorm.outputs import METRICS_CSV
from resnorm.training.checkpointing import check_checkpoint_options, checkpoint_seconds

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
       "PYTHONWARNINGS": "ignore", "OMP_WAIT_POLICY": "PASSIVE"}  # fmt: skip
RESNORM = [sys.executable, "-m", "resnorm.cli", "train"]
SMALL = ("model.depth=2", "trainer.num_threads=1", "trainer.log_every=5")


def ckpt_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def test_the_default_is_a_checkpoint_every_ten_minutes(compose_cfg):
    t = compose_cfg().trainer
    assert t.ckpt_minutes == 10 and t.ckpt_every == 0 and t.progress == "auto"
    check_checkpoint_options(t)
    assert checkpoint_seconds(t) == 600.0
    for off in ("trainer.ckpt_minutes=0", "trainer.ckpt_minutes=null"):
        t = compose_cfg(off).trainer
        check_checkpoint_options(t)
        assert checkpoint_seconds(t) is None
    assert checkpoint_seconds(compose_cfg("trainer.ckpt_minutes=0.5").trainer) == 30.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.ckpt_minutes=-1", "trainer.ckpt_minutes=-1 must be a non-negative number"),
        ("trainer.ckpt_minutes=ten", "trainer.ckpt_minutes='ten' must be a non-negative number"),
        ("trainer.ckpt_minutes=true", "trainer.ckpt_minutes=True must be a non-negative number"),
        ("trainer.ckpt_minutes=inf", "trainer.ckpt_minutes=inf must be a non-negative number"),
        ("trainer.ckpt_every=-5", "trainer.ckpt_every=-5 must be a non-negative integer"),
        ("trainer.ckpt_every=2.5", "trainer.ckpt_every=2.5 must be a non-negative integer"),
        ("trainer.progress=sometimes", "trainer.progress='sometimes' must be one of auto"),
    ],
)
def test_bad_checkpoint_options_are_one_clear_error(compose_cfg, override, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        check_checkpoint_options(compose_cfg(override).trainer)


def test_both_triggers_write_one_last_ckpt_that_ends_at_the_final_step(tmp_path, compose_cfg):
    from resnorm.training.run import run_job

    # steps 10 and 20 by steps, nearly every step by time (0.06 s), and 25 at the end
    cfg = compose_cfg(*SMALL, "trainer.max_steps=25", "trainer.val_every=25",
                      "trainer.ckpt_every=10", "trainer.ckpt_minutes=0.001")  # fmt: skip
    run = tmp_path / "run"
    first = run_job(cfg, run)
    assert first["status"] == "completed" and "resumed" not in first
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt"]
    assert ckpt_step(ckpts / "last.ckpt") == 25  # not step 20, the last multiple of 10
    again = run_job(cfg, run)  # a relaunch resumes from the finished run's checkpoint
    assert again["status"] == "completed" and again["resumed"] == 1 and again["steps"] == 25
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt"]  # no last-v1.ckpt
    assert again["metrics"] == first["metrics"]


class Killed(Exception):
    pass


class KillBeforeValidation(pl.Callback):
    """Stands in for a SIGKILL between a step's checkpoint trigger and its validation."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == self.step:
            raise Killed(f"killed before the validation of step {self.step}")


def val_rows(run: Path) -> list[tuple[str, str]]:
    with open(run / METRICS_CSV, newline="") as f:
        return [(r["step"], r["val/acc"]) for r in csv.DictReader(f) if r.get("val/acc")]


@pytest.mark.slow
def test_a_checkpoint_due_on_a_validation_step_waits_for_the_validation(
    tmp_path, compose_cfg, monkeypatch
):
    # A checkpoint taken before step 20's validation would resume past it, never to run it.
    import resnorm.training.fit as fit
    from resnorm.training.run import run_job

    cfg = compose_cfg(*SMALL, "trainer.max_steps=30", "trainer.val_every=10",
                      "trainer.ckpt_every=10", "trainer.ckpt_minutes=0")  # fmt: skip
    whole = run_job(cfg, tmp_path / "whole")
    with monkeypatch.context() as m:
        m.setattr(fit, "extra_callbacks", lambda _: [KillBeforeValidation(20)])
        with pytest.raises(Killed):
            run_job(cfg, tmp_path / "run")
    assert ckpt_step(tmp_path / "run/checkpoints/last.ckpt") == 10  # not the step-20 state
    resumed = run_job(cfg, tmp_path / "run")
    assert resumed["resumed"] == 1 and resumed["metrics"] == whole["metrics"]
    assert val_rows(tmp_path / "run") == val_rows(tmp_path / "whole")
    assert len(val_rows(tmp_path / "whole")) == 3


@pytest.mark.slow
def test_a_run_killed_after_its_first_timed_checkpoint_resumes_from_it(tmp_path):
    # the default config with only the clock shortened: 0.02 min = 1.2 s of training
    args = ["trainer.max_steps=100", "trainer.ckpt_minutes=0.02", "trainer.num_threads=1"]
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen([*RESNORM, *args, f"hydra.run.dir={run}"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(ckpt.exists, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    saved = ckpt_step(ckpt)
    assert 0 < saved < 100  # written by the clock: ckpt_every is 0, the end never came
    # The relaunch draws its bar from the step it starts at: the first bar line says where.
    out = subprocess.run([*RESNORM, *args, "trainer.progress=true", f"hydra.run.dir={run}"],
                         env=ENV, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr
    starts = re.findall(r"Training:.*?\| *(\d+)/100 ", out.stdout)
    assert starts and int(starts[0]) == saved, out.stdout[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed"] >= 1
    assert summary["steps"] == 100
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.ckpt"]
    assert ckpt_step(ckpt) == 100
