"""Finding a run and resuming it: the run directory on a run's first and last lines,
``resnorm resume``, the resume line, the end line of a multirun, and how soon a run
says anything at all."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resnorm.outputs import METRICS_CSV, SUMMARY
from resnorm.sweeps.study_end import study_line
from resnorm.training.csv_log import LEGACY_STASH, STASH, stash_for_resume
from resnorm.training.resume_cli import ResumeRefused, resume_args

# PYTHONWARNINGS is left alone: a false Lightning warning must show to be caught
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
RESNORM = [sys.executable, "-m", "resnorm.cli"]
TINY = ["task=image_digits", "model.depth=1", "model.dim=16", "trainer.num_threads=1"]


def resnorm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*RESNORM, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def wait_for(predicate, timeout: float = 300.0) -> None:
    end = time.time() + timeout
    while not predicate():
        if time.time() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def fake_run(root: Path, status: str | None, mode: str = "RUN") -> Path:
    """A run directory as a job leaves it: its Hydra files and (maybe) a summary."""
    (root / ".hydra").mkdir(parents=True)
    (root / ".hydra" / "overrides.yaml").write_text("- task=image_digits\n- model.depth=1\n")
    (root / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  mode: {mode}\n")
    if status is not None:
        (root / SUMMARY).write_text(json.dumps({"status": status}))
    return root


# --- fast: argument building, refusals, the end line, the stash -------------------------


def test_resume_args_relaunch_a_stopped_run_into_its_own_directory(tmp_path):
    run = fake_run(tmp_path / "run", "running")
    args = resume_args([str(run), "+study.rerun_failed=true"])
    assert args == ["task=image_digits", "model.depth=1", f"hydra.run.dir={run.resolve()}",
                    "+study.rerun_failed=true"]  # fmt: skip
    assert resume_args([str(fake_run(tmp_path / "new", None))])[-1].startswith("hydra.run.dir=")


def test_resume_args_of_a_study_and_of_a_job_inside_one(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    hydra:\n    - hydra.mode=MULTIRUN\n"
        "    - hydra.sweep.dir=somewhere\n    - hydra/launcher=joblib_local\n"
        "    task:\n    - seed=0,1\n    - pack=2\n"
    )
    assert resume_args([str(sweep)]) == ["-m", "seed=0,1", "pack=2", "hydra/launcher=joblib_local",
                                         f"hydra.sweep.dir={sweep}"]  # fmt: skip
    job = fake_run(sweep / "0_job", "running", mode="MULTIRUN")
    with pytest.raises(ResumeRefused, match=r"job of the study .*resnorm resume .*sweep"):
        resume_args([str(job)])


@pytest.mark.parametrize("status", ["completed", "diverged", "pruned"])
def test_resume_refuses_a_finished_run(tmp_path, status):
    with pytest.raises(ResumeRefused, match=f"already finished \\({status}"):
        resume_args([str(fake_run(tmp_path / "run", status))])


def test_resume_refuses_a_directory_that_is_not_a_run_in_one_line_without_torch(tmp_path):
    code = (
        "import sys; from resnorm.cli import main; rc = main(['resume', sys.argv[1]]); "
        "assert 'torch' not in sys.modules; sys.exit(rc)"
    )
    for target in (tmp_path, tmp_path / "missing"):
        out = subprocess.run([sys.executable, "-c", code, str(target)], env=ENV,
                             capture_output=True, text=True)  # fmt: skip
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert lines[0].startswith("resnorm: error: resume: ") and "not a" in lines[0]
    done = fake_run(tmp_path / "done", "completed")
    out = subprocess.run([sys.executable, "-c", code, str(done)], env=ENV, capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "already finished" in out.stderr


def test_study_line_counts_every_status_and_names_the_report():
    rows = [{"status": "completed"}] * 10 + [{"status": "diverged"}, {"status": "failed"}]
    line = study_line("/s/x y", rows)
    assert line == (
        "resnorm: study /s/x y: 12 runs (10 completed, 1 diverged, 1 failed); "
        "report: resnorm report '/s/x y' --out '/s/x y/report'"
    )
    assert study_line("/s", [{"status": "failed"}]).endswith("1 run (1 failed); nothing "
                                                              "finished to report")  # fmt: skip


def test_the_resume_stash_leaves_the_csv_folder_empty(tmp_path):
    """Lightning's CSV logger warns that previous logs 'will be deleted' when its folder is
    not empty; the stash keeps them, so it must not sit there (an older stash is folded in)."""
    (tmp_path / "csv").mkdir()
    (tmp_path / METRICS_CSV).write_text("step,a\n2,2.0\n")
    (tmp_path / LEGACY_STASH).write_text("step,a\n1,1.0\n")
    stash_for_resume(tmp_path)
    assert list((tmp_path / "csv").iterdir()) == []
    assert (tmp_path / STASH).read_text().splitlines() == ["a,step", "1.0,1", "2.0,2"]


# --- slow: real runs ---------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.slow
def test_first_line_is_the_run_directory_within_2s_and_the_last_line_names_it(tmp_path):
    """The first line is printed before torch loads. Measured as wall time from launch and
    as the CPU time the process had used by then; on a machine busier than its cores the
    wall time says little, so there only the CPU time is held to the bound."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*RESNORM, "train", *TINY, "trainer.max_steps=2"], cwd=tmp_path,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, bufsize=1)  # fmt: skip
    first = proc.stdout.readline()
    wall, cpu = time.perf_counter() - t0, _cpu_seconds(proc.pid)
    rest, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert first.startswith("resnorm: run directory "), first
    run_dir = first.split()[3]
    assert Path(run_dir).is_absolute() and Path(run_dir).is_relative_to(tmp_path / "outputs")
    assert f"resnorm resume {run_dir})" in first
    last = rest.strip().splitlines()[-1]
    assert last.startswith("resnorm: completed ") and last.endswith(f" [{run_dir}]")
    assert cpu < 1.5, f"{cpu:.2f}s of CPU before the first line"
    if os.getloadavg()[0] < (os.cpu_count() or 1):
        assert wall < 2.0, f"first line after {wall:.2f}s"


def _train_steps(run_dir: Path) -> list[int]:
    with open(run_dir / METRICS_CSV, newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss")]


@pytest.mark.slow
def test_killed_run_resumes_with_resnorm_resume_in_its_own_directory(tmp_path):
    import torch

    args = ["train", "trainer.max_steps=300", "trainer.ckpt_every=50", "task.val_every=100",
            "trainer.num_threads=1"]  # fmt: skip
    proc = subprocess.Popen([*RESNORM, *args], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    run_dir = Path(proc.stdout.readline().split()[3])
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    wait_for(ckpt.exists)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((run_dir / SUMMARY).read_text())["status"] == "running"
    step = torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
    assert step in (50, 100, 150, 200, 250)

    out = resnorm("resume", str(run_dir), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    said = out.stdout + out.stderr
    assert said.count(f"resnorm: resumed from step {step} ({ckpt}) [{run_dir}]") == 1, said
    assert "will be deleted" not in said and "Previous log files" not in said
    assert out.stdout.strip().splitlines()[-1].endswith(f" [{run_dir}]")
    assert [p.name for p in (tmp_path / "outputs" / "runs").glob("*/*")] == [run_dir.name]
    summary = json.loads((run_dir / SUMMARY).read_text())
    assert summary["status"] == "completed" and summary["resumed"] == 1
    steps = _train_steps(run_dir)
    assert steps == list(range(steps[0], 300, 10)) and steps[0] < 10  # none twice, none lost
    assert not (run_dir / STASH).exists()

    again = resnorm("resume", str(run_dir), cwd=tmp_path)
    lines = [ln for ln in again.stderr.splitlines() if ln.strip()]
    assert again.returncode == 2 and len(lines) == 1 and "already finished" in lines[0]


@pytest.mark.slow
def test_multirun_ends_with_the_study_its_counts_and_a_report_command_that_works(tmp_path):
    sweep = tmp_path / "sweep"
    out = resnorm("train", "-m", *TINY, "seed=0,1", "pack=2", "trainer.max_steps=5",
                  "task.val_every=5", f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    members = [ln for ln in lines if ln.startswith("resnorm: completed ")]
    assert len(members) == 2 and all(f" [{sweep}/" in ln for ln in members)
    end = lines[-1]
    assert end.startswith(f"resnorm: study {sweep}: 2 runs (2 completed); report: resnorm report")
    report = shlex.split(end.split("; report: ", 1)[1])
    assert report[:2] == ["resnorm", "report"]
    made = resnorm(*report[1:], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (sweep / "report" / "index.html").is_file()

    # the study resumes with one command too: nothing left to run, the same end line
    again = resnorm("resume", str(sweep), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("skipped (completed before)") == 2
    assert again.stdout.strip().splitlines()[-1] == end
