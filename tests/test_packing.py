"""Packed multiruns: which runs share a pack, how a sweep's jobs are grouped, and `pack=k`
multiruns as users launch them (real configs, real training, real run directories)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from resnorm.jobs.packing import (
    check_compatible,
    group,
    pack_id,
    pack_key,
    pack_overrides,
    read_manifest,
)
from resnorm.member_config import MEMBER_KEYS, PACK_WIDE_RUN_KEYS
from resnorm.outputs import METRICS_CSV, RUN_ONLY_KEYS, SUMMARY, run_key, write_json_atomic
from resnorm.paths import conf_dir
from resnorm.training.validate import check_config

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
GRID = ["seed=0,1,2", "optim.lr=1e-3,3e-3"]
SHORT = ["trainer.max_steps=20", "task.val_every=10", "logger=csv", "trainer.num_threads=1"]


def container(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = compose("train", list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def hydra_cfg(*overrides: str):
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return compose("train", list(overrides), return_hydra_config=True).hydra


def resnorm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "resnorm.cli", *args], cwd=cwd, env=ENV, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def summaries(sweep: Path) -> dict[str, dict]:
    """Run dir name -> summary, for every run of a sweep (pack job dirs hold none)."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep.glob(f"*/{SUMMARY}"))}


# ---- which runs may share a pack ------------------------------------------------------
def test_seeds_lrs_and_thresholds_share_a_pack_key_architectures_do_not():
    base = container()
    same = [
        container("seed=3"), container("optim.lr=3e-3", "optim.warmup_steps=0"),
        container("optim.schedule=constant", "optim.grad_clip=null", "model.dropout=0.1"),
        container("stability.spike_multiple=3", "stability.divergence_loss_multiple=5"),
        container("logger=none", "pack=8", "optim.betas=[0.8,0.9]", "optim.eps=1e-6"),
    ]  # fmt: skip
    assert {pack_key(c) for c in same} == {pack_key(base)}
    other = [
        container("model.depth=2"), container("variant=post_ln"), container("model.dim=32"),
        container("task=nlp_charlm"), container("trainer.max_steps=7"),
        container("task.datamodule.batch_size=32"),
        # run-only, but one Trainer and one probe schedule serve the whole pack
        container("trainer.ckpt_every=7"), container("trainer.log_every=5"),
        container("stability.probe_every=7"),
    ]  # fmt: skip
    keys = {pack_key(c) for c in other}
    assert len(keys) == len(other) and pack_key(base) not in keys
    # the variant name is a label: the same block under another name packs with it
    relabelled = container("model.variant=mine")
    assert pack_key(relabelled) == pack_key(base) and run_key(relabelled) != run_key(base)
    assert set(MEMBER_KEYS) & set(RUN_ONLY_KEYS) == set(RUN_ONLY_KEYS) - set(PACK_WIDE_RUN_KEYS)
    assert {"pack", "pack_manifest", "logger"} <= set(MEMBER_KEYS)


def test_check_compatible_names_the_first_differing_key():
    check_compatible([container(), container("seed=1", "optim.lr=0.1", "optim.betas=[0.8,0.9]")])
    check_compatible([container()])
    with pytest.raises(ValueError, match=r"members 0 and 2 differ in model\.depth \(4 vs 8\)"):
        check_compatible([container(), container("seed=1"), container("model.depth=8")])
    with pytest.raises(ValueError, match=r"model\.norm_position"):
        check_compatible([container("variant=pre_ln"), container("variant=post_ln")])


def test_group_keeps_job_order_and_respects_the_size():
    jobs = [("a", 0), ("b", 1), ("a", 2), ("a", 3), ("b", 4), ("a", 5), ("c", 6)]
    packs = group(jobs, key=lambda j: j[0], size=2)
    assert [[n for _, n in p] for p in packs] == [[0, 2], [1, 4], [3, 5], [6]]
    assert group(jobs, key=lambda j: j[0], size=1) == [[j] for j in jobs]
    assert [len(p) for p in group(jobs, key=lambda j: "one", size=3)] == [3, 3, 1]
    assert group([], key=lambda j: j, size=4) == []
    for bad in (0, -1, 2.0, True, "4"):
        with pytest.raises(ValueError, match="pack="):
            group(jobs, key=lambda j: j[0], size=bad)


def test_pack_is_checked_up_front_and_changes_no_run_key_or_directory_name(compose_cfg):
    for bad in ("0", "-2", "1.5", "abc"):
        with pytest.raises(ValueError, match=r"^pack=\S+ must be a positive integer"):
            check_config(compose_cfg(f"pack={bad}"))
    check_config(compose_cfg("pack=8"))
    assert run_key(container("pack=8")) == run_key(container())
    excluded = hydra_cfg().job.config.override_dirname.exclude_keys
    assert "pack" in excluded and "pack_manifest" in excluded


def test_pack_ids_follow_their_members_and_overrides_read_back():
    a, b = ("/s/0_x", "k0"), ("/s/1_x", "k1")
    assert pack_id([a, b]) == pack_id([a, b]) != pack_id([a, ("/s/1_x", "k2")])
    first = ["seed=0", "hydra.sweep.subdir=trial_0003", "+optuna.trial=3"]
    manifest = "/tmp/a dir, it's/.packs/0123.json"
    out = pack_overrides(first, manifest, "0123")
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(out)}
    assert parsed == {"seed": 0, "optuna.trial": 3, "pack_manifest": manifest,
                      "hydra.sweep.subdir": ".packs/0123"}  # fmt: skip


def test_the_pack_sweeper_is_the_default_and_presets_keep_theirs():
    assert hydra_cfg().sweeper._target_.endswith("resnorm_pack_sweeper.PackSweeper")
    quick = hydra_cfg("study=quick").sweeper
    assert quick._target_.endswith("PackSweeper") and "variant" in quick.params
    assert hydra_cfg("hparams_search=digits_lr").sweeper._target_.endswith("ResnormOptunaSweeper")
    assert hydra_cfg("hydra/sweeper=basic").sweeper._target_.endswith("BasicSweeper")


def test_a_bad_pack_stops_a_multirun_before_any_job(tmp_path):
    out = resnorm("train", "-m", "seed=0,1", "pack=0", f"hydra.sweep.dir={tmp_path / 's'}",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2 and "pack=0 must be a positive integer" in out.stderr
    assert not list(tmp_path.rglob(SUMMARY))


# ---- multiruns as users launch them -----------------------------------------------------
@pytest.mark.slow
def test_a_packed_multirun_writes_every_run_as_if_alone_and_resumes(tmp_path):
    sweep = tmp_path / "packed"
    out = resnorm("train", "-m", *GRID, "pack=4", *SHORT, f"hydra.sweep.dir={sweep}",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pack 1/2: 4 members (jobs 0,1,2,3)" in out.stdout
    assert "pack 2/2: 2 members (jobs 4,5)" in out.stdout
    runs = summaries(sweep)
    names = [f"{i}_image_digits_pre_ln_d4_s{i // 2}" for i in range(6)]
    assert sorted(runs) == names  # the names of an unpacked multirun
    for i, name in enumerate(names):
        s, run = runs[name], sweep / name
        assert s["status"] == "completed" and s["steps"] == 20
        assert s["seed"] == i // 2 and s["lr"] == (1e-3, 3e-3)[i % 2]
        assert s["pack"]["size"] == (4 if i < 4 else 2) and s["pack"]["index"] == i % 4
        cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
        assert cfg.seed == i // 2 and "pack_manifest" not in cfg
        assert "pack=4" in OmegaConf.load(run / ".hydra" / "overrides.yaml")
        assert "train/loss" in (run / METRICS_CSV).read_text().splitlines()[0]
    manifests = sorted((sweep / ".packs").glob("*.json"))
    assert [len(read_manifest(m)["members"]) for m in manifests] in ([4, 2], [2, 4])
    with open(sweep / "index.csv") as f:
        assert sorted(r["run_dir"] for r in csv.DictReader(f)) == names

    again = resnorm("train", "-m", *GRID, "pack=4", *SHORT, f"hydra.sweep.dir={sweep}",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped (completed before)") == 6
    assert "0 to run in 0 packs" in again.stdout and summaries(sweep) == runs

    for name in names[4:]:  # a pack killed mid-run: relaunched as the same pack (same id)
        write_json_atomic(sweep / name / SUMMARY, {**runs[name], "status": "running"})
    third = resnorm("train", "-m", *GRID, "pack=4", *SHORT, f"hydra.sweep.dir={sweep}",
                    cwd=tmp_path)  # fmt: skip
    assert third.returncode == 0, third.stderr[-3000:]
    pid = runs[names[4]]["pack"]["id"]
    assert f"pack 1/1: 2 members (jobs 4,5) image_digits pre_ln d4 [{sweep}/.packs/{pid}]" in (
        third.stdout
    )
    for name in (names[1], names[2], names[5]):  # runs lost: what is left fills one pack
        (sweep / name / SUMMARY).unlink()
    fourth = resnorm("train", "-m", *GRID, "pack=4", *SHORT, f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path)  # fmt: skip
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert "pack 1/1: 3 members (jobs 1,2,5)" in fourth.stdout
    assert fourth.stdout.count("skipped (completed before)") == 3
    rerun = summaries(sweep)
    assert sorted(rerun) == names and all(s["status"] == "completed" for s in rerun.values())
    assert all(rerun[n] == runs[n] for n in (names[0], names[3]))


@pytest.mark.slow
def test_pack_1_is_exactly_the_basic_sweepers_multirun(tmp_path):
    args = ["variant=pre_ln,post_ln", "seed=0,1", "trainer.max_steps=5", "task.val_every=5",
            "logger=csv", "trainer.num_threads=1"]  # fmt: skip
    default = resnorm("train", "-m", *args, f"hydra.sweep.dir={tmp_path / 'a'}", cwd=tmp_path)
    basic = resnorm("train", "-m", *args, "hydra/sweeper=basic",
                    f"hydra.sweep.dir={tmp_path / 'b'}", cwd=tmp_path)  # fmt: skip
    assert default.returncode == basic.returncode == 0, default.stderr[-3000:]
    a, b = summaries(tmp_path / "a"), summaries(tmp_path / "b")
    assert sorted(a) == sorted(b) and len(a) == 4
    assert [a[n]["run_key"] for n in sorted(a)] == [b[n]["run_key"] for n in sorted(b)]
    assert all(a[n]["metrics"] == b[n]["metrics"] and "pack" not in a[n] for n in a)
    assert "pack " not in default.stdout and not (tmp_path / "a" / ".packs").exists()
    for name in a:  # a job's own Hydra files, as Hydra writes them
        assert (tmp_path / "a" / name / ".hydra" / "hydra.yaml").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib_local", "local"])  # local: submitit's
def test_packs_hold_one_architecture_with_parallel_launchers(tmp_path, launcher):
    sweep = tmp_path / "s"
    out = resnorm("train", "-m", "seed=0,1", "model.depth=2,3", "pack=8", *SHORT[:3],
                  f"hydra/launcher={launcher}", f"hydra.sweep.dir={sweep}",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pack 1/2: 2 members (jobs 0,2)" in out.stdout
    assert "pack 2/2: 2 members (jobs 1,3)" in out.stdout
    runs = summaries(sweep)
    assert len(runs) == 4 and all(s["status"] == "completed" for s in runs.values())
    for m in (sweep / ".packs").glob("*.json"):
        members = read_manifest(m)["members"]
        assert len({c["config"]["model"]["depth"] for c in members}) == 1
        assert [c["config"]["seed"] for c in members] == [0, 1]
        ids = {runs[Path(c["run_dir"]).name]["pack"]["id"] for c in members}
        assert ids == {m.stem}


@pytest.mark.slow
def test_optuna_trials_train_as_packs_and_each_is_told(tmp_path):
    conf = tmp_path / "conf" / "hparams_search"
    conf.mkdir(parents=True)
    sweeper = {"study_name": "packed", "n_trials": 4, "heartbeat_interval": 1,
               "grace_period": 4, "sampler": {"name": "random", "seed": 0},
               "pruner": {"name": "none"},
               "params": {"optim.lr": "tag(log, interval(1e-3, 1e-2))",
                          "seed": "choice(0,1)"}}  # fmt: skip
    body = {"defaults": [{"override /hydra/sweeper": "resnorm_optuna"}],
            "hydra": {"sweeper": sweeper}}  # fmt: skip
    (conf / "packed.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(body))
    sweep = tmp_path / "sweep"
    out = resnorm("train", "-m", "hparams_search=packed",
                  f"hydra.searchpath=[file://{conf.parent}]", "hydra.sweeper.pack=3", *SHORT,
                  "model.depth=2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pack 1/1: 3 members" in out.stdout and "pack 1/1: 1 member " in out.stdout
    study = optuna.load_study(study_name="packed", storage=f"sqlite:///{sweep}/optuna.db")
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    for t in trials:
        s = json.loads((sweep / f"trial_{t.number:04d}" / SUMMARY).read_text())
        assert s["config"]["optuna"]["trial"] == t.number and s["status"] == "completed"
        assert s["config"]["optim"]["lr"] == pytest.approx(t.params["optim.lr"])
        assert t.value == pytest.approx(s["metrics"]["val_best/acc"])
