"""Checkpoints are never half-written, a relaunch never reads a damaged one, and a full
disk ends a run as ``failed`` with the reason, after which a relaunch completes it.

Unit tests of the writer and of ``resume_path``; real runs (``resnorm train`` in a
subprocess) on the embedded digits task: a truncated ``last.ckpt`` after a SIGKILL, and a
run directory on a tmpfs too small for the checkpoints (root only).
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from conftest import wait_for
from resnorm.outputs import METRICS_CSV
from resnorm.training.last_checkpoint import (
    AtomicCheckpointIO,
    checkpoint_problem,
    resume_path,
)

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
       "PYTHONWARNINGS": "ignore", "OMP_WAIT_POLICY": "PASSIVE"}  # fmt: skip
RESNORM = [sys.executable, "-m", "resnorm.cli", "train"]
SMALL = ("task=image_digits", "model.depth=2", "model.dim=16", "trainer.ckpt_every=10",
         "task.val_every=20", "trainer.log_every=5", "trainer.num_threads=1",
         "trainer.ckpt_minutes=0", "logger=csv")  # fmt: skip


def state(step: int) -> dict:
    return {"state_dict": {"w": torch.arange(4096.0) * step}, "global_step": step}


def test_the_writer_saves_lightnings_bytes_and_keeps_the_previous_checkpoint(tmp_path):
    ours, lightnings = tmp_path / "ours" / "last.ckpt", tmp_path / "lightning.ckpt"
    TorchCheckpointIO().save_checkpoint(state(1), lightnings)
    AtomicCheckpointIO().save_checkpoint(state(1), ours)
    assert ours.read_bytes() == lightnings.read_bytes()  # the content is unchanged
    first = ours.read_bytes()
    AtomicCheckpointIO().save_checkpoint(state(2), ours)
    assert (ours.parent / "last.prev.ckpt").read_bytes() == first
    assert torch.load(ours, weights_only=True)["global_step"] == 2
    assert sorted(p.name for p in ours.parent.iterdir()) == ["last.ckpt", "last.prev.ckpt"]


def test_a_write_that_fails_midway_leaves_last_ckpt_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(state(1), path)
    before = path.read_bytes()
    real_write, written = os.write, []

    def disk_fills(fd: int, data) -> int:  # half the bytes land, then the disk is full
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(real_write(fd, bytes(data)[: len(data) // 2]))
        return written[-1]

    monkeypatch.setattr(os, "write", disk_fills)
    with pytest.raises(OSError, match="No space left on device") as failed:
        AtomicCheckpointIO().save_checkpoint(state(2), path)
    monkeypatch.undo()
    assert written and failed.value.errno == errno.ENOSPC
    assert failed.value.filename == str(path)  # the error names the checkpoint
    assert path.read_bytes() == before  # byte-identical
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt", "last.prev.ckpt"]
    assert resume_path(path.parent) == str(path)


def truncate(path: Path) -> None:
    """Put the first half of the checkpoint under its name: a new file, as a copy over it
    that filled the disk left it (``last.prev.ckpt`` may be a link to the same file)."""
    half = path.with_name("half")
    half.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    half.replace(path)


def test_resume_path_sets_a_truncated_checkpoint_aside_and_falls_back(tmp_path, capsys):
    last, prev = tmp_path / "last.ckpt", tmp_path / "last.prev.ckpt"
    AtomicCheckpointIO().save_checkpoint(state(1), last)
    AtomicCheckpointIO().save_checkpoint(state(2), last)
    truncate(last)
    assert checkpoint_problem(last) and checkpoint_problem(prev) is None
    assert resume_path(tmp_path) == str(prev)
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"resnorm: checkpoint {last} is unreadable (BadZipFile")
    assert line.endswith(f"moved to last.ckpt.corrupt; resuming from {prev}")
    assert (tmp_path / "last.ckpt.corrupt").exists() and not last.exists()
    truncate(prev)
    assert resume_path(tmp_path) is None  # nothing readable: the run starts again
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and line.endswith("starting the run again from step 0")
    assert resume_path(tmp_path) is None and capsys.readouterr().out == ""  # said once


def test_a_refused_pickle_is_not_taken_for_damage(tmp_path):
    # weights_only refuses it when the run loads it, and the run fails: it is not set aside
    torch.save({"state_dict": {}, "payload": os.getcwd}, tmp_path / "last.ckpt")
    assert checkpoint_problem(tmp_path / "last.ckpt") is None
    assert resume_path(tmp_path) == str(tmp_path / "last.ckpt")


def train(run: Path, *args: str, max_steps: int) -> subprocess.CompletedProcess:
    return subprocess.run([*RESNORM, *SMALL, f"trainer.max_steps={max_steps}", *args,
                           f"hydra.run.dir={run}"], env=ENV, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def check_log(run: Path, max_steps: int) -> None:
    """Every train step (each 5th) and validation (each 20th) in csv/metrics.csv, once."""
    with open(run / METRICS_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    for column, every in (("train/loss", 5), ("val/acc", 20)):
        steps = sorted(int(r["step"]) for r in rows if r.get(column))
        assert steps == list(range(every - 1, max_steps, every)), (column, steps)


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("prev", ["kept", "lost"])
def test_a_truncated_last_ckpt_is_set_aside_and_the_run_completes(tmp_path, prev):
    """SIGKILL after a few checkpoints, then last.ckpt cut in half (as a full disk left it
    before checkpoints were atomic): the relaunch says so in one line and resumes from
    last.prev.ckpt, or (prev lost too) trains again from step 0; either way it completes
    with every step logged once."""
    run, steps = tmp_path / "run", 100
    ckpts = run / "checkpoints"
    proc = subprocess.Popen([*RESNORM, *SMALL, f"trainer.max_steps={steps}",
                             f"hydra.run.dir={run}"], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for((ckpts / "last.prev.ckpt").exists, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    truncate(ckpts / "last.ckpt")
    if prev == "lost":
        (ckpts / "last.prev.ckpt").unlink()
    out = train(run, max_steps=steps)
    assert out.returncode == 0, out.stderr
    said = [ln for ln in out.stdout.splitlines() if "is unreadable" in ln]
    then = f"resuming from {ckpts / 'last.prev.ckpt'}" if prev == "kept" else "from step 0"
    assert len(said) == 1 and said[0].endswith(then), out.stdout
    assert said[0].startswith(f"resnorm: checkpoint {ckpts / 'last.ckpt'} is unreadable (")
    done = summary(run)
    assert done["status"] == "completed" and done["steps"] == steps
    assert ("resumed" in done) == (prev == "kept")
    check_log(run, steps)
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "last.ckpt.corrupt"]


def tmpfs(mnt: Path, size: int, remount: bool = False) -> None:
    opts = f"remount,size={size}" if remount else f"size={size}"
    cmd = ["mount", "-o", opts, str(mnt)] if remount else ["mount", "-t", "tmpfs", "-o", opts,
                                                            "tmpfs", str(mnt)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")


def pages(run: Path) -> int:
    """The bytes a tmpfs gives the files under ``run`` (whole pages)."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in run.rglob("*") if p.is_file())


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_fails_the_run_honestly_and_a_relaunch_completes_it(tmp_path):
    steps = 40
    ref = tmp_path / "ref"
    assert train(ref, max_steps=steps).returncode == 0
    ckpt = (ref / "checkpoints" / "last.ckpt").stat().st_size
    # room for every file and one and a half checkpoints: the step-10 checkpoint fits,
    # the step-20 one (written beside it before the rename) does not
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    tmpfs(mnt, pages(ref) + ckpt // 2)
    try:
        run = mnt / "run"
        out = train(run, max_steps=steps)
        assert out.returncode != 0
        ckpts = run / "checkpoints"
        error = f"[Errno 28] No space left on device: '{ckpts / 'last.ckpt'}'"
        assert f"resnorm: error: {error}" in out.stderr, out.stderr
        failed = summary(run)
        assert failed["status"] == "failed" and failed["error"] == f"OSError: {error}"
        assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]  # no temp file
        assert checkpoint_problem(ckpts / "last.ckpt") is None  # the step-10 one, whole
        assert torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == 10
        tmpfs(mnt, 64 * 2**20, remount=True)  # space freed
        # a failed run is retried only when asked (the rule of every failed run)
        again = train(run, "+study.rerun_failed=true", max_steps=steps)
        assert again.returncode == 0, again.stderr
        done, whole = summary(run), summary(ref)
        assert done["status"] == "completed" and done["steps"] == steps
        assert done["resumed"] == 1 and done["metrics"] == whole["metrics"]
        check_log(run, steps)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
