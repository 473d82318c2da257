"""Fault injection: killed runs and sweeps resume and lose nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resnorm.training.csv_log import merge_rows

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
RESNORM = [sys.executable, "-m", "resnorm.cli"]


def wait_for(predicate, timeout: float = 300.0) -> None:
    end = time.time() + timeout
    while not predicate():
        if time.time() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.1)


def rows(path: Path) -> list[tuple]:
    with open(path, newline="") as f:
        return sorted(tuple(sorted(r.items())) for r in csv.DictReader(f))


def test_merge_rows_replaces_relogged_rows_and_keeps_the_rest():
    old = [{"step": "1", "a": "1.0", "b": ""}, {"step": "2", "a": "2.0", "b": ""},
           {"step": "2", "a": "", "b": "9"}]  # fmt: skip
    new = [{"step": "2", "a": "2.5", "b": ""}, {"step": "3", "a": "3.0", "b": ""}]
    merged = merge_rows(old, new)
    assert [(r["step"], r["a"], r["b"]) for r in merged] == [
        ("1", "1.0", ""),
        ("2", "2.5", ""),
        ("2", "", "9"),
        ("3", "3.0", ""),
    ]


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_result(tmp_path):
    args = ["train", "trainer.max_steps=150", "trainer.ckpt_every=50", "task.val_every=50",
            "trainer.num_threads=1"]  # fmt: skip
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run([*RESNORM, *args, f"hydra.run.dir={ref}"], env=ENV, check=True,
                   capture_output=True)  # fmt: skip
    proc = subprocess.Popen([*RESNORM, *args, f"hydra.run.dir={run}"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    ckpt = run / "checkpoints" / "last.ckpt"
    wait_for(ckpt.exists)
    first = ckpt.stat().st_mtime_ns
    wait_for(lambda: ckpt.stat().st_mtime_ns != first)  # the step-100 checkpoint
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    out = subprocess.run([*RESNORM, *args, f"hydra.run.dir={run}"], env=ENV,
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    a, b = (json.loads((d / "summary.json").read_text()) for d in (ref, run))
    assert b["status"] == "completed" and b["resumed"] == 1
    assert b["steps"] == a["steps"] == 150
    assert b["metrics"] == a["metrics"]  # bit-identical on CPU with the same seed
    assert rows(run / "csv" / "metrics.csv") == rows(ref / "csv" / "metrics.csv")
    steps = [
        dict(r)["step"] for r in rows(run / "csv" / "metrics.csv") if dict(r).get("train/loss")
    ]
    assert len(steps) == len(set(steps))  # no duplicated metric rows


@pytest.mark.slow
def test_sigkilled_study_resumes_and_runs_only_what_is_missing(tmp_path):
    sweep = tmp_path / "study"
    args = ["train", "-m", "study=quick", "task=image_digits", "model.depth=2",
            "trainer.max_steps=40", "trainer.num_threads=1",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    proc = subprocess.Popen([*RESNORM, *args], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip

    def finished() -> int:
        found = [json.loads(p.read_text()) for p in sweep.rglob("summary.json")]
        return sum(s["status"] == "completed" for s in found)

    wait_for(lambda: finished() >= 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = finished()
    out = subprocess.run([*RESNORM, *args], env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("resnorm: skipped (completed before)") == done_before
    assert out.stdout.count("resnorm: completed") == 6 - done_before
    with open(sweep / "index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    assert len(index) == 6 and len({r["run_dir"] for r in index}) == 6
    assert {r["status"] for r in index} == {"completed"}


@pytest.mark.slow
def test_sigtermed_run_stays_running_and_resumes(tmp_path):
    """SIGTERM (scancel, preemption) stops a run; it is not a failure, so the relaunch
    resumes it instead of skipping it as failed."""
    args = ["train", "trainer.max_steps=400", "trainer.ckpt_every=20", "task.val_every=100",
            "trainer.num_threads=1", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    proc = subprocess.Popen([*RESNORM, *args], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    wait_for((tmp_path / "checkpoints" / "last.ckpt").exists)
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    stopped = json.loads((tmp_path / "summary.json").read_text())
    assert stopped["status"] == "running" and stopped["stopped"] == "SIGTERMException"
    out = subprocess.run([*RESNORM, *args], env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    done = json.loads((tmp_path / "summary.json").read_text())
    assert done["status"] == "completed" and done["resumed"] == 1 and done["steps"] == 400
