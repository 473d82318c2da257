"""A relaunch over an unreadable summary.json keeps the file aside and says so, once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from resnorm.jobs.resume import previous_status, set_aside_other_run

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
RESNORM = [sys.executable, "-m", "resnorm.cli"]
GARBAGE = '{"status": "completed", "run_key": '  # a write cut short


def corrupt_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "unreadable" in line]


def test_a_scan_stays_silent_and_the_job_sets_the_file_aside(tmp_path, capsys):
    (tmp_path / "summary.json").write_text(GARBAGE)
    for _ in range(3):  # a sweeper asks this of every job on every scan
        assert previous_status(tmp_path, "k") is None
    assert capsys.readouterr().out == ""
    assert set_aside_other_run(tmp_path, "k") is None
    (line,) = corrupt_lines(capsys.readouterr().out)
    assert line.startswith(f"resnorm: {tmp_path / 'summary.json'} is unreadable")
    assert line.endswith(
        "moved to summary.json.corrupt; the run starts again (from its last checkpoint, if any)"
    )
    assert (tmp_path / "summary.json.corrupt").read_text() == GARBAGE
    assert not (tmp_path / "summary.json").exists()
    (tmp_path / "summary.json").write_text("[]")  # valid JSON, not a summary: set aside too
    set_aside_other_run(tmp_path, "k")
    assert (tmp_path / "summary.json.corrupt.2").read_text() == "[]"
    assert (tmp_path / "summary.json.corrupt").read_text() == GARBAGE  # the first one kept


@pytest.mark.slow
def test_a_relaunch_over_a_corrupt_summary_runs_again_and_keeps_the_old_file(tmp_path):
    run = tmp_path / "run"
    args = [*RESNORM, "train", "trainer.max_steps=20", "task.val_every=10",
            "trainer.num_threads=1", f"hydra.run.dir={run}"]  # fmt: skip
    first = subprocess.run(args, env=ENV, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert corrupt_lines(first.stdout) == []
    (run / "summary.json").write_text(GARBAGE)

    again = subprocess.run(args, env=ENV, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    (line,) = corrupt_lines(again.stdout)  # one line, not one per read of the file
    assert line == (
        f"resnorm: {run / 'summary.json'} is unreadable (JSONDecodeError: Expecting value: "
        "line 1 column 36 (char 35)): moved to summary.json.corrupt; the run starts again "
        "(from its last checkpoint, if any)"
    )
    assert (run / "summary.json.corrupt").read_text() == GARBAGE
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 20
