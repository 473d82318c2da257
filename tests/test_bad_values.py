"""Bad values are refused before anything is written, and a run that did nothing says so.

Each case runs `resnorm train` as a user does (a subprocess, real configs) and checks that
it exits non-zero with one `resnorm: error:` line naming the option, and that the run
directory Hydra made for it is gone again (no summary.json, nothing trained).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from resnorm.models.config import BlockConfig
from resnorm.outputs import SUMMARY
from resnorm.training.validate import check_trainer
from test_cli import resnorm

FAST = ("task=image_digits", "model.depth=1", "model.dim=16", "trainer.max_steps=2",
        "task.val_every=2")  # fmt: skip
# A run that fails once it starts (its dataset is missing), for the relaunch cases.
FAILING = ("task=image_cifar10", "model.depth=1", "model.dim=16", "trainer.max_steps=2")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")

BAD_VALUES = [
    (["model.layerscale_init=nan"], "model.layerscale_init=nan must be a positive finite"),
    (["trainer.log_every=0"], "trainer.log_every=0 must be a positive integer"),
    pytest.param(["trainer=gpu"], "trainer.accelerator=gpu needs a CUDA device", marks=NO_CUDA),
    # the optim record's own checks
    (["optim.betas=[2,0.9]"], "optim.betas"),
    (["optim.betas=[0.9]"], "optim.betas"),
    (["optim.eps=-1"], "optim.eps=-1"),
    (["optim.min_lr_ratio=2"], "optim.min_lr_ratio=2"),
]


def one_error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("resnorm: error: "), stderr
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("overrides,fragment", BAD_VALUES)
def test_bad_value_is_one_line_and_leaves_no_run_directory(tmp_path, overrides, fragment):
    # the default run directory, outputs/runs/<date>/<time>_..., under the working directory
    out = resnorm("train", *FAST, *overrides, cwd=tmp_path)
    assert out.returncode != 0
    assert fragment in one_error(out.stderr)
    left = [p.relative_to(tmp_path) for p in tmp_path.rglob("*")]
    assert left in ([], [Path("outputs")]), left  # the dated folders went with the run's


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -0.1, True, "x"])
def test_layerscale_init_must_be_a_positive_finite_number(value):
    with pytest.raises(ValueError, match=r"^model\.layerscale_init=.* positive finite"):
        BlockConfig(residual="layerscale", layerscale_init=value)


def test_small_positive_layerscale_inits_are_accepted():
    for value in (0.1, 1e-6, 1):
        assert BlockConfig(residual="layerscale", layerscale_init=value).layerscale_init == value


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "true", "'10'"])
def test_log_every_must_be_a_positive_integer(compose_cfg, value):
    cfg = compose_cfg(f"trainer.log_every={value}")
    with pytest.raises(ValueError, match=r"^trainer\.log_every=.* positive integer"):
        check_trainer(cfg.trainer)


def test_rejected_relaunch_keeps_the_completed_run_it_lands_in(tmp_path):
    run_dir = tmp_path / "run"
    first = resnorm("train", *FAST, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(run_dir)
    out = resnorm("train", *FAST, "model.layerscale_init=nan", f"hydra.run.dir={run_dir}",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode != 0
    assert "model.layerscale_init=nan" in one_error(out.stderr)
    after = snapshot(run_dir)
    assert set(after) == set(before)
    # Hydra rewrites the job's own files (.hydra/, its log) before the job starts
    kept = [name for name in before if not name.startswith(".hydra") and name != "train.log"]
    assert kept and all(after[name] == before[name] for name in kept)
    assert json.loads(after[SUMMARY])["status"] == "completed"


def test_relaunched_failed_run_exits_non_zero_with_the_override_that_retries_it(tmp_path):
    run = (*FAILING, f"task.data_dir={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}")
    first = resnorm("train", *run, cwd=tmp_path)
    assert first.returncode != 0 and "dataset missing" in one_error(first.stderr)
    summary = (tmp_path / "run" / SUMMARY).read_bytes()
    again = resnorm("train", *run, cwd=tmp_path)
    assert again.returncode != 0
    line = one_error(again.stderr)
    assert "failed before" in line and "+study.rerun_failed=true" in line, line
    assert (tmp_path / "run" / SUMMARY).read_bytes() == summary  # nothing ran
    # the override it names really retries the run (which fails again: still no dataset)
    retry = resnorm("train", *run, "+study.rerun_failed=true", cwd=tmp_path)
    assert retry.returncode != 0 and "dataset missing" in one_error(retry.stderr)


@pytest.mark.slow
def test_rejected_job_of_a_study_removes_only_its_own_directory(tmp_path):
    sweep = tmp_path / "sweep"
    out = resnorm("train", "-m", *FAST, "model.layerscale_init=nan,0.1",
                  f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert out.returncode != 0
    assert "model.layerscale_init=nan" in one_error(out.stderr)
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["1_image_digits_pre_ln_d1_s0"]  # the good job's, not the rejected one's
    assert (sweep / "multirun.yaml").is_file() and (sweep / jobs[0] / SUMMARY).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("pack", ["pack=1", "pack=2"])  # plain jobs, or the packing sweeper
def test_a_study_relaunched_skips_an_old_failure_names_the_retry_and_exits_zero(tmp_path, pack):
    # docs/sweeps.md: a relaunched study retries failed runs only when asked
    study = ("-m", *FAILING, f"task.data_dir={tmp_path / 'nowhere'}", pack,
             f"hydra.sweep.dir={tmp_path / 'sweep'}")  # fmt: skip
    assert resnorm("train", *study, cwd=tmp_path).returncode != 0
    again = resnorm("train", *study, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "skipped (failed before; +study.rerun_failed=true retries it)" in again.stdout
