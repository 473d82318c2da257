"""A run directory that holds a run of another config (a preset's default changed since the
study ran) is set aside, not resumed from and not written over."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from resnorm.jobs.resume import SUPERSEDED, set_aside_other_run
from test_faults import ENV, RESNORM, rows


def _old_run(run_dir, key="oldkey0123456789abc", status="completed"):
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"state")
    (run_dir / "csv").mkdir()
    (run_dir / "csv" / "metrics.csv").write_text("step,train/loss\n1,2.0\n")
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text("new: job\n")
    (run_dir / "claims.log").write_text("{}\n")
    (run_dir / "train.log").write_text("new job's log\n")
    (run_dir / "summary.json").write_text(json.dumps({"run_key": key, "status": status}))


def test_another_configs_run_moves_aside_and_the_jobs_own_files_stay(tmp_path, capsys):
    _old_run(tmp_path)
    dest = set_aside_other_run(tmp_path, "newkey")
    assert dest == tmp_path / SUPERSEDED / "oldkey0123456789"
    assert sorted(p.name for p in dest.iterdir()) == ["checkpoints", "csv", "summary.json"]
    assert (dest / "checkpoints" / "last.ckpt").read_bytes() == b"state"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".hydra", "claims.log", SUPERSEDED, "train.log"
    ]  # fmt: skip
    assert (
        "held a completed run of another config (run key oldkey012345)" in capsys.readouterr().out
    )
    # set aside twice (the old config relaunched, then the new one again): both are kept
    (tmp_path / "summary.json").write_text(json.dumps({"run_key": "oldkey0123456789abc"}))
    again = set_aside_other_run(tmp_path, "newkey")
    assert again == tmp_path / SUPERSEDED / "oldkey0123456789.2" and dest.is_dir()


def test_the_same_config_or_no_summary_moves_nothing(tmp_path):
    assert set_aside_other_run(tmp_path, "k") is None  # an empty directory
    _old_run(tmp_path, key="k", status="running")  # a killed run of this config: resumes
    assert set_aside_other_run(tmp_path, "k") is None
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    (tmp_path / "summary.json").write_text("{not json")
    assert set_aside_other_run(tmp_path, "k") is None


@pytest.mark.slow
def test_a_changed_budget_trains_afresh_and_keeps_the_old_run(tmp_path):
    """Before, the second run resumed from the first run's final checkpoint (step 20 of a
    20-step schedule) and wrote over its summary and metrics."""
    run = tmp_path / "run"
    base = ["train", "task.val_every=10", "trainer.num_threads=1", f"hydra.run.dir={run}"]
    for steps in (20, 30):
        out = subprocess.run([*RESNORM, *base, f"trainer.max_steps={steps}"], env=ENV,
                             capture_output=True, text=True)  # fmt: skip
        assert out.returncode == 0, out.stderr
    new = json.loads((run / "summary.json").read_text())
    assert new["status"] == "completed" and new["steps"] == 30 and "resumed" not in new
    (old_dir,) = (run / SUPERSEDED).iterdir()
    old = json.loads((old_dir / "summary.json").read_text())
    assert old["status"] == "completed" and old["steps"] == 20
    assert old["run_key"].startswith(old_dir.name) and old["run_key"] != new["run_key"]
    assert "moved to superseded/" in out.stdout
    # the new run's metrics start at its own first step: nothing carried over
    steps = [int(dict(r)["step"]) for r in rows(run / "csv" / "metrics.csv")]
    assert min(steps) < 10 and max(steps) >= 29
    old_steps = [int(dict(r)["step"]) for r in rows(old_dir / "csv" / "metrics.csv")]
    assert max(old_steps) <= 20  # its test row is logged at step 20


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
