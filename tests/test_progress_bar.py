"""The step progress bar: on a terminal (or when asked for), never in a pipe or a log file."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from resnorm.training.progress import StepProgressBar, wants_progress_bar

SMALL = ("model.depth=2", "trainer.num_threads=1", "trainer.val_every=10")
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
       "PYTHONWARNINGS": "ignore", "OMP_WAIT_POLICY": "PASSIVE"}  # fmt: skip
# the last drawing of a 40-step run: step/total, elapsed<remaining (ETA), steps/s, loss
FINAL = re.compile(r"Training: 100%\|[^|]*\| 40/40 \[\d\d:\d\d<00:00, +[\d.]+ steps/s, loss=\d")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_wants_a_terminal():
    assert wants_progress_bar("auto", Terminal()) is True
    assert wants_progress_bar("auto", io.StringIO()) is False
    assert wants_progress_bar(True, io.StringIO()) is True
    assert wants_progress_bar(False, Terminal()) is False


def test_no_bar_when_stdout_is_not_a_terminal(tmp_path, compose_cfg, capsys):
    from resnorm.training.fit import build_trainer
    from resnorm.training.run import run_job

    cfg = compose_cfg(*SMALL, "trainer.max_steps=20")
    assert not sys.stdout.isatty()  # pytest's capture
    trainer = build_trainer(cfg, str(tmp_path / "t"), [], [])
    assert trainer.progress_bar_callback is None
    assert run_job(cfg, tmp_path / "run")["status"] == "completed"
    out = capsys.readouterr()
    assert "Training" not in out.out + out.err and "steps/s" not in out.out + out.err


def test_the_bar_counts_optimizer_steps_across_epochs(tmp_path, compose_cfg, capsys):
    from resnorm.training.fit import build_trainer
    from resnorm.training.run import run_job

    # 40 steps of batch 64 over the digits training split are several epochs
    cfg = compose_cfg(*SMALL, "trainer.max_steps=40", "trainer.progress=true")
    bars = [c for c in build_trainer(cfg, str(tmp_path / "t"), [], []).callbacks
            if isinstance(c, StepProgressBar)]  # fmt: skip
    assert len(bars) == 1
    assert run_job(cfg, tmp_path / "run")["status"] == "completed"
    out = capsys.readouterr().out
    assert FINAL.search(out), out[-1000:]
    assert set(re.findall(r"\d+/(\d+) \[", out)) == {"40"}  # no epoch, validation or test bar


def run_in_terminal(args: list[str], rows: int, cols: int) -> str:
    """Run ``resnorm train`` with stdout and stderr on a pseudo-terminal of that size."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "resnorm.cli", "train", *args], env=ENV,
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=600) == 0, b"".join(chunks).decode(errors="replace")[-2000:]
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("size", [(40, 120), (0, 0)], ids=["sized", "no-size"])
def test_a_run_on_a_terminal_shows_the_bar(tmp_path, size):
    # (0, 0): a pseudo-terminal that reports no width, as `script` or a bare pty.spawn gives
    out = run_in_terminal([*SMALL, "trainer.max_steps=40", f"hydra.run.dir={tmp_path / 'run'}"],
                          *size)  # fmt: skip
    assert FINAL.search(out), out[-2000:]
    assert "resnorm: completed" in out
