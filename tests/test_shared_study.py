"""Many launchers, one study: claims divide the runs, a dead launcher's runs are taken
over, and nothing is trained twice."""

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

from resnorm.jobs import study_progress
from resnorm.jobs.claims import CLAIM, CLAIM_LOG, Claim, ClaimOptions, Holder, acquire, inspect
from resnorm.sweeps.completion import Pending, settle

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore",
       "OMP_WAIT_POLICY": "PASSIVE"}  # fmt: skip
RESNORM = [sys.executable, "-m", "resnorm.cli"]
FAST = ClaimOptions(heartbeat_s=0.2, stale_s=1.0)


def foreign(run_dir: Path, age_s: float) -> None:
    """A claim made on another machine whose last heartbeat was ``age_s`` ago."""
    data = {"host": "elsewhere", "pid": 1, "boot_id": "another-machine", "token": "t0"}
    (run_dir / CLAIM).write_text(json.dumps(data))
    then = time.time() - age_s
    os.utime(run_dir / CLAIM, (then, then))


def test_a_claim_excludes_others_until_released(tmp_path):
    first = acquire(tmp_path, FAST)
    assert isinstance(first, Claim)
    second = acquire(tmp_path, FAST)
    assert isinstance(second, Holder) and not second.stale and second.pid == os.getpid()
    first.release()
    assert not (tmp_path / CLAIM).exists()
    third = acquire(tmp_path, FAST)
    assert isinstance(third, Claim)
    third.release(untrained="completed before")  # found finished: given back untrained
    log = (tmp_path / CLAIM_LOG).read_text().splitlines()
    assert len(log) == 3 and log[1].split(" claimed by ")[1] in log[2]
    assert log[2].endswith(", not trained: completed before")
    assert trained_claims(log) == [log[0]]


def trained_claims(log: list[str]) -> list[str]:
    """The ``claims.log`` lines of claims that were not given back untrained."""
    untrained = {line.split(" released by ")[1].split(",")[0] for line in log
                 if " released by " in line}  # fmt: skip
    return [line for line in log if " claimed by " in line
            and line.split(" claimed by ")[1].split(" (")[0] not in untrained]  # fmt: skip


def test_the_heartbeat_keeps_a_claim_live_past_stale_s(tmp_path):
    claim = acquire(tmp_path, FAST)
    assert isinstance(claim, Claim)
    time.sleep(2.5 * FAST.stale_s)
    holder = inspect(tmp_path, FAST)
    assert holder is not None and not holder.stale and holder.age_s < FAST.stale_s
    claim.release()


def test_a_silent_foreign_claim_is_taken_over_and_a_beating_one_is_not(tmp_path):
    live, dead = tmp_path / "live", tmp_path / "dead"
    live.mkdir(), dead.mkdir()
    foreign(live, age_s=0.1)
    foreign(dead, age_s=5.0)
    assert isinstance(acquire(live, FAST), Holder)
    taken = acquire(dead, FAST)
    assert isinstance(taken, Claim)
    log = (dead / CLAIM_LOG).read_text()
    assert "took over from elsewhere pid 1, stale: no heartbeat" in log
    taken.release()


def test_a_claim_of_a_dead_process_on_this_machine_is_stale_at_once(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    claim = acquire(tmp_path, ClaimOptions(30.0, 300.0))
    assert isinstance(claim, Claim)
    claim._stop.set()
    data = json.loads((tmp_path / CLAIM).read_text())
    (tmp_path / CLAIM).write_text(json.dumps({**data, "pid": int(proc.stdout)}))
    holder = inspect(tmp_path, ClaimOptions(30.0, 300.0))
    assert holder is not None and holder.stale and "gone" in holder.why


def test_release_leaves_a_claim_that_is_no_longer_ours(tmp_path):
    claim = acquire(tmp_path, FAST)
    assert isinstance(claim, Claim)
    foreign(tmp_path, age_s=0.0)  # taken over meanwhile (this process had stalled)
    claim.release()
    assert json.loads((tmp_path / CLAIM).read_text())["host"] == "elsewhere"


def test_bad_claim_options_are_rejected():
    with pytest.raises(ValueError, match="claims.stale_s=1.0 must exceed twice"):
        ClaimOptions.from_config({"heartbeat_s": 1, "stale_s": 1})


def test_settle_waits_for_live_claims_and_relaunches_stale_ones(tmp_path):
    runs = [tmp_path / n for n in ("free", "busy", "dead")]
    for r in runs:
        r.mkdir()
    foreign(runs[2], age_s=10.0)
    busy = acquire(runs[1], FAST)  # another launcher's job, ending in a moment
    assert isinstance(busy, Claim)
    relaunched: list[int] = []

    def relaunch(again: list[Pending]) -> None:
        relaunched.extend(p.num for p in again)
        for p in again:
            got = acquire(p.run_dir, FAST)
            assert isinstance(got, Claim)
            got.release()

    t0 = time.time()
    import threading

    threading.Timer(1.0, busy.release).start()
    settle([Pending(i, str(r)) for i, r in enumerate(runs)], FAST, relaunch, poll_s=0.1)
    assert relaunched == [2] and time.time() - t0 >= 1.0
    assert not any((r / CLAIM).exists() for r in runs)


def test_progress_line_counts_the_launchers_runs(tmp_path, monkeypatch):
    monkeypatch.delenv(study_progress.ENV, raising=False)
    rows = [{"run_dir": "a", "status": "completed"}, {"run_dir": "x", "status": "failed"}]
    path = study_progress.start(tmp_path, [str(tmp_path / n) for n in "abcd"], rows)
    try:
        start = json.loads(path.read_text())["started"]
        rows += [{"run_dir": "b", "status": "diverged"}, {"run_dir": "c", "status": "failed"}]
        line = study_progress.status(rows, now=start + 20)
        assert line == "[3/4 done: 1 failed, 1 diverged; ETA 10s]"
    finally:
        study_progress.stop(path)
    assert study_progress.status(rows) == "" and not path.exists()


# ---- three launchers of one study, one of them killed ---------------------------------
def launch(sweep: Path, extra: list[str]) -> subprocess.Popen:
    args = ["train", "-m", "task=image_digits", "model.depth=2", "trainer.max_steps=120",
            "trainer.val_every=40", "trainer.ckpt_every=40", "trainer.num_threads=1",
            "seed=0,1,2,3,4,5", "claims.heartbeat_s=0.5", "claims.stale_s=5",
            f"hydra.sweep.dir={sweep}", *extra]  # fmt: skip
    out = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.Popen([*RESNORM, *args], env=ENV, start_new_session=True, **out)


def held_by_group(sweep: Path, pgid: int) -> list[Path]:
    """Run dirs claimed right now by a process of the launcher's process group."""
    out = []
    for path in sweep.glob(f"*/{CLAIM}"):
        try:
            if os.getpgid(json.loads(path.read_text())["pid"]) == pgid:
                out.append(path.parent)
        except (OSError, ValueError, KeyError):
            pass
    return out


def running(run_dir: Path) -> bool:
    try:
        return json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    except (OSError, ValueError):
        return False


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib_local"])
def test_three_launchers_divide_a_study_and_a_killed_ones_run_is_taken_over(tmp_path, launcher):
    sweep = tmp_path / "study"
    extra = [] if launcher == "basic" else ["hydra/launcher=joblib_local",
                                            "hydra.launcher.n_jobs=2"]  # fmt: skip
    procs = [launch(sweep, extra) for _ in range(3)]
    victim = procs[0]
    end = time.time() + 240
    while not any(running(d) for d in held_by_group(sweep, victim.pid)):
        if victim.poll() is not None or time.time() > end:
            pytest.fail(f"the launcher never started a run: {victim.communicate()[0]}")
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)  # the launcher and its workers, mid-run
    outs = [victim.communicate()[0]] + [p.communicate(timeout=300)[0] for p in procs[1:]]
    assert [p.returncode for p in procs[1:]] == [0, 0], outs[1:]
    run_dirs = sorted(d for d in sweep.iterdir() if (d / ".hydra").is_dir())
    assert len(run_dirs) == 6
    summaries = [json.loads((d / "summary.json").read_text()) for d in run_dirs]
    assert [s["status"] for s in summaries] == ["completed"] * 6
    # each run completed once: one "completed" line per run across the three outputs
    assert sum(o.count("resnorm: completed") for o in outs) == 6, outs
    # and started once, plus one start per takeover of a run the killed launcher held (a
    # launcher that claims a run another has just finished gives it back untrained)
    starts = {d.name: trained_claims((d / CLAIM_LOG).read_text().splitlines())
              for d in run_dirs}  # fmt: skip
    takeovers = [n for n, lines in starts.items() if len(lines) > 1]
    assert all(len(lines) == 1 for n, lines in starts.items() if n not in takeovers)
    assert takeovers, starts  # the victim was killed holding a run
    # (the log names the takeover unless another launcher removed the stale claim and
    # this one created the next claim first: either way, two claims, one run)
    assert all(len(starts[n]) == 2 for n in takeovers), starts
    assert all(not (d / CLAIM).exists() for d in run_dirs)
    for d in run_dirs:
        assert not list(d.rglob("last-v*.ckpt"))
        with open(d / "csv" / "metrics.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
        steps = [r["step"] for r in rows]
        assert len(steps) == len(set(steps)), d  # no step logged twice
    with open(sweep / "index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    assert len(index) == 6 and {r["status"] for r in index} == {"completed"}
    # every takeover the claim log records is announced by the launcher that made it
    for name in takeovers:
        if "(took over from" in starts[name][1]:
            lines = [ln for o in outs[1:] for ln in o.splitlines()]
            assert any(ln.startswith("resnorm: took over a stale claim (")
                       and ln.endswith(f"[{sweep / name}]") for ln in lines), outs[1:]  # fmt: skip


def test_settle_without_waiting_names_the_runs_held_elsewhere(tmp_path, capsys):
    run = tmp_path / "busy"
    run.mkdir()
    foreign(run, age_s=0.0)
    settle([Pending(0, str(run))], ClaimOptions(30.0, 300.0), lambda _: None, wait=False)
    assert "left to another launcher (elsewhere pid 1, heartbeat" in capsys.readouterr().out
