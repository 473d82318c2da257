"""`resnorm train -m hydra/launcher=slurm` against a real one-node SLURM cluster.

The cluster (munged, slurmctld, slurmd under a temporary directory) comes from
``slurm_cluster.start_cluster``; the tests skip, saying why, where it cannot start.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resnorm.outputs import METRICS_CSV, SUMMARY
from slurm_cluster import PARTITION, ClusterUnavailable, SlurmCluster, start_cluster

pytestmark = pytest.mark.slow

# One CPU, no GPU, a 2-block model: the launcher's GPU defaults would never be scheduled.
CPU_NODE = (
    "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10",
    f"hydra.launcher.partition={PARTITION}", "trainer.num_threads=1", "model.depth=2",
    "logger=csv",
)  # fmt: skip


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    try:
        c = start_cluster(tmp_path_factory.mktemp("slurm"))
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))
    print(f"test SLURM cluster up in {c.start_s:.1f}s")
    yield c
    c.stop()


def launch(cluster: SlurmCluster, sweep: Path, *overrides: str) -> subprocess.Popen:
    """`resnorm train -m` on the cluster, output to ``<sweep>.log`` (read with ``log``)."""
    sweep.parent.mkdir(parents=True, exist_ok=True)
    env = {**cluster.env, "OMP_WAIT_POLICY": "PASSIVE", "WANDB_MODE": "offline",
           "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}  # fmt: skip
    with open(f"{sweep}.log", "a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "resnorm.cli", "train", "-m", *CPU_NODE, *overrides,
             f"hydra.sweep.dir={sweep}"],
            cwd=sweep.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def log(sweep: Path) -> str:
    """The launcher's output (less submitit's sacct complaints) and what resnorm said in
    the SLURM jobs."""
    noise = ("sacct", "accounting storage is disabled")
    text = Path(f"{sweep}.log").read_text(errors="replace").splitlines()
    jobs = [ln for p in sorted(sweep.glob(".submitit/*/*_log.*")) if p.suffix in (".out", ".err")
            for ln in p.read_text(errors="replace").splitlines() if "resnorm" in ln]  # fmt: skip
    return "\n".join([ln for ln in text if not any(n in ln for n in noise)][-40:] + jobs)


def summaries(sweep: Path) -> dict[str, dict]:
    found = {}
    for path in sweep.rglob(SUMMARY):
        try:
            found[path.parent.name] = json.loads(path.read_text())
        except ValueError:
            continue  # being replaced right now
    return found


def finish(proc: subprocess.Popen, sweep: Path, timeout_s: float = 300) -> int:
    """The launcher's exit code; one still running after ``timeout_s`` is killed (fails)."""
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
        raise AssertionError(f"launcher still running after {timeout_s}s: {log(sweep)}") from None


def wait_until(ready, what: str, timeout_s: float, sweep: Path, proc=None) -> None:
    """Poll ``ready``; fail with the launcher's output if it exits or time runs out first."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert proc is None or proc.poll() is None, f"launcher exited waiting {what}: {log(sweep)}"
        assert time.monotonic() < deadline, f"{timeout_s}s waiting {what}: {log(sweep)}"
        time.sleep(0.3)


def test_multirun_jobs_are_slurm_jobs_and_write_every_output(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    proc = launch(cluster, sweep, "seed=0,1", "trainer.max_steps=30", "task.val_every=10")
    seen: dict[str, set[str]] = {}  # squeue's job id -> the states it was seen in
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        for job in cluster.queue():
            seen.setdefault(job["id"], set()).add(job["state"])
        time.sleep(0.3)
    assert finish(proc, sweep, 1) == 0, log(sweep)
    # hydra-submitit submits the sweep as one job array: <array id>_<task>
    running = sorted(i for i, states in seen.items() if "RUNNING" in states)
    assert len({i.split("_")[0] for i in running}) == 1 and len(running) == 2, seen
    assert list(sweep.glob(".submitit/*/*_log.out"))  # submitit's logs, one per SLURM job
    runs = summaries(sweep)
    assert len(runs) == 2, log(sweep)
    assert sorted(s["seed"] for s in runs.values()) == [0, 1]
    assert all(s["status"] == "completed" and s["steps"] == 30 for s in runs.values()), runs
    with open(sweep / "index.csv") as f:
        index = list(csv.DictReader(f))
    assert sorted(r["run_dir"] for r in index) == sorted(runs)
    assert {r["status"] for r in index} == {"completed"}
    # slurmctld's job-completion log records both array tasks as COMPLETED once they end
    wait_until(lambda: not cluster.queue(), "for the jobs to leave the queue", 60, sweep)
    assert list(cluster.finished().values()).count("COMPLETED") >= 2


def test_scancelled_job_resumes_on_relaunch(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    study = ("seed=0", "trainer.max_steps=400", "trainer.ckpt_every=20", "task.val_every=200")
    proc = launch(cluster, sweep, *study)

    def checkpointed() -> bool:
        runs = summaries(sweep)
        return any(s["status"] == "running" for s in runs.values()) and any(
            sweep.glob("*/checkpoints/last.ckpt")
        )

    wait_until(checkpointed, "for a checkpoint of the running job", 240, sweep, proc)
    (job,) = [j for j in cluster.queue() if j["state"] == "RUNNING"]
    cluster.cmd("scancel", job["id"])
    wait_until(lambda: not cluster.queue(), "for the cancelled job to leave the queue", 60, sweep)
    assert cluster.finished()[job["raw_id"]] == "CANCELLED"  # slurmctld's completion log
    (run,) = summaries(sweep).values()
    assert run["status"] != "completed", run
    if proc.poll() is None:
        # Without an accounting database (slurmdbd) sacct cannot tell submitit that the
        # job was cancelled, so the launcher would wait for its result forever.
        proc.terminate()
        finish(proc, sweep, 30)
    else:
        assert proc.returncode != 0, log(sweep)  # submitit learnt the job was cancelled

    proc = launch(cluster, sweep, *study)
    assert finish(proc, sweep) == 0
    ((run_dir, run),) = summaries(sweep).items()
    assert run["status"] == "completed", f"{run['status']} ({run.get('error')})\n{log(sweep)}"
    assert run["steps"] == 400
    assert run.get("resumed", 0) >= 1, run
    with open(sweep / run_dir / METRICS_CSV) as f:
        steps = [row["step"] for row in csv.DictReader(f) if row.get("train/loss")]
    assert len(steps) == 400 // 10  # trainer.log_every=10: each train row once
    assert len(steps) == len(set(steps)), "a step logged twice after the resume"
    with open(sweep / "index.csv") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["completed"]
