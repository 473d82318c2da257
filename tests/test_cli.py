"""`resnorm` as a user runs it: subprocesses, real configs, real outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnorm.outputs import METRICS_CSV, SUMMARY

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}


def resnorm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "resnorm.cli", *args], cwd=cwd, env=ENV, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def summaries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob(SUMMARY))]


def sweep_two_variants(tmp_path: Path, *overrides: str) -> Path:
    """A 5-step multirun of pre_ln and post_ln into ``tmp_path/sweep``; it must succeed."""
    sweep = tmp_path / "sweep"
    out = resnorm("train", "-m", "variant=pre_ln,post_ln", *overrides, "trainer.max_steps=5",
                  "task.val_every=5", f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return sweep


def test_help_does_not_import_lightning():
    # nor torch, which must load after resnorm.omp has chosen the OpenMP wait policy
    code = (
        "import sys, resnorm.bench.wait_policy; from resnorm.cli import main; main(['--help']); "
        "assert 'pytorch_lightning' not in sys.modules and 'torch' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "resnorm train" in out.stdout


def test_single_run_writes_the_outputs_contract(tmp_path):
    run_dir = tmp_path / "run"
    out = resnorm("train", "trainer.max_steps=30", "task.val_every=10", f"hydra.run.dir={run_dir}",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    s = json.loads((run_dir / SUMMARY).read_text())
    assert s["status"] == "completed" and s["steps"] == 30
    assert s["task"] == "image_digits" and s["variant"] == "pre_ln"
    assert (s["residual"], s["norm_position"], s["norm"], s["depth"]) == (
        "on",
        "pre",
        "layernorm",
        4,
    )
    assert len(s["run_key"]) == 16 and s["schema"] == 1 and s["seed"] == 0
    for k in ("test/acc", "test/f1_macro", "test/precision_macro", "val_best/acc"):
        assert 0.0 <= s["metrics"][k] <= 1.0
    assert s["params"] > 0 and s["wall_s"] > 0
    assert {"resnorm", "torch", "lightning", "git"} <= set(s["versions"])
    assert s["device"].startswith("cpu")
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    rows = (run_dir / METRICS_CSV).read_text().splitlines()
    assert rows[0].count(",") >= 2 and "train/loss" in rows[0] and len(rows) > 3


@pytest.mark.slow
def test_multirun_runs_every_job(tmp_path):
    sweep = tmp_path / "sweep"
    out = resnorm("train", "-m", "variant=pre_ln,post_ln", "model.depth=2,4",
                  "trainer.max_steps=10", "task.val_every=10", f"hydra.sweep.dir={sweep}",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    found = summaries(sweep)
    assert len(found) == 4
    assert {(s["variant"], s["depth"]) for s in found} == {
        ("pre_ln", 2),
        ("pre_ln", 4),
        ("post_ln", 2),
        ("post_ln", 4),
    }
    assert all(s["status"] == "completed" for s in found)
    assert len({s["run_key"] for s in found}) == 4


@pytest.mark.slow
def test_wandb_gives_each_multirun_job_its_own_offline_run(tmp_path):
    sweep = sweep_two_variants(tmp_path, "logger=wandb")
    runs = sorted(sweep.glob("*/wandb/offline-run-*"))
    assert len(runs) == 2
    assert runs[0].parent.parent != runs[1].parent.parent  # one W&B run per job directory
    assert runs[0].name.split("-")[-1] != runs[1].name.split("-")[-1]
    for run in runs:
        variant = "pre_ln" if "pre_ln" in run.parent.parent.name else "post_ln"
        # wandb.init's debug log records the config it was given: flat keys
        debug = (run / "logs" / "debug.log").read_text()
        assert "'model.depth': 4" in debug and "'optim.lr': 0.001" in debug
        records = next(run.glob("run-*.wandb")).read_bytes()  # the run's record log
        for needle in (f"variant={variant}", "depth=4", "test/acc", "status"):
            assert needle.encode() in records, needle
        assert b"image_digits" in records  # job_type = task


BAD_INPUTS = [
    (["variant=banana"], "variant"),
    (["model.norm=banana"], "model.norm='banana' is not a valid choice; allowed: dyt"),
    (["model.heads=5"], "model.heads=5 must divide model.dim=64"),
    (["model.depth=0"], "model.depth=0 must be a positive integer"),
    (["model.dept=3"], "model.dept"),
    (["modle.depth=3"], "modle"),
    (["optim.lr=-1"], "optim.lr=-1"),
    (["optim.lr=0"], "optim.lr=0"),
    (["task=nope"], "task"),
    (["trainer.max_steps=0"], "trainer.max_steps=0"),
    (["variant=pre_ln", "model.residual=deepnorm"], "requires model.norm_position=post"),
    (["model.residual=sideways"], "model.residual='sideways'"),
    (["optim.schedule=sawtooth"], "optim.schedule='sawtooth'"),
    (["model.dim=-8"], "model.dim=-8"),
    (["variant=post_lm"], "did you mean 'post_ln'?"),
    (["model.dept=3"], "did you mean 'depth'?"),
    (["model.norm=rmsnrom"], "did you mean 'rmsnorm'?"),
    (["task=image_digit"], "did you mean 'image_digits'?"),
    (["optim.warmup_steps=-5"], "optim.warmup_steps=-5"),
    (["model.dropout=1.0"], "model.dropout=1.0"),
    (["stability.spike_multiple=banana"], "stability.spike_multiple"),
    (["optim.grad_clip=0"], "optim.grad_clip=0"),
    (
        ["-m", "hparams_search=digits_lr", "optim.lr=tag(log, interval(1e-2, 1e-4))"],
        "is an empty range",
    ),
]


@pytest.mark.parametrize("overrides,fragment", BAD_INPUTS)
def test_bad_input_is_one_clear_line_and_nothing_completes(tmp_path, overrides, fragment):
    out = resnorm("train", *overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode != 0
    errors = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1, out.stderr
    assert errors[0].startswith("resnorm: error:") and fragment in errors[0], errors[0]
    assert all(s["status"] != "completed" for s in summaries(tmp_path))
    assert not (tmp_path / "run" / "checkpoints").exists()  # no training started


@pytest.mark.slow
def test_submitit_local_launcher_runs_each_job_in_its_own_process(tmp_path):
    sweep = sweep_two_variants(tmp_path, "hydra/launcher=local")
    found = summaries(sweep)
    assert sorted(s["variant"] for s in found) == ["post_ln", "pre_ln"]
    assert all(s["status"] == "completed" for s in found)
    assert list(sweep.glob(".submitit/*/*_log.out"))  # submitit's own job logs


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    sweep = sweep_two_variants(tmp_path, "hydra/launcher=joblib_local")
    found = summaries(sweep)
    assert len(found) == 2 and all(s["status"] == "completed" for s in found)
    assert {s["device"] for s in found} == {"cpu (1 threads)"}  # cores / n_jobs each


def test_top_level_help_names_every_bench():
    from resnorm.bench import BENCHES

    out = subprocess.run([sys.executable, "-m", "resnorm.cli", "--help"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0 and "bench {" + ",".join(BENCHES) + "}" in out.stdout
    assert "block_cost" in BENCHES
