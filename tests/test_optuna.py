"""The Optuna sweeper: search spaces, storages, heartbeats, pruning inside jobs, several
workers on one study. Sweeps run as users run them: `resnorm train -m hparams_search=...`
subprocesses writing real summaries into real Optuna storages."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import resnorm
from resnorm.jobs.index import LEGACY_MODEL_FIELDS, write_index
from resnorm.jobs.optuna_pruners import build_pruner
from resnorm.jobs.optuna_storage import open_storage
from resnorm.jobs.resume import previous_status, should_skip
from resnorm.outputs import SUMMARY
from resnorm.sweeps.instability import instability_score
from resnorm.sweeps.optuna_factories import build_sampler, grid_size
from resnorm.sweeps.optuna_heartbeat import Heartbeat, fail_stale_trials
from resnorm.sweeps.optuna_outcome import Objective, outcome_from_summary
from resnorm.sweeps.optuna_pareto import format_results
from resnorm.sweeps.optuna_space import format_override, grid_values, parse_search_space
from resnorm.sweeps.optuna_storage import dashboard_command, resolve_storage_url
from resnorm.sweeps.optuna_sweeper import tell

optuna.logging.set_verbosity(optuna.logging.WARNING)
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
# the smallest trial that still validates (every 10 steps) and is monitored for divergence
TINY = ["trainer.max_steps=20", "task.val_every=10", "model.dim=32", "model.depth=2",
        "model.heads=2", "logger=none", "stability.probes=false",
        "trainer.num_threads=1"]  # fmt: skip


# ---- search spaces ------------------------------------------------------------------
def test_search_space_syntax_maps_to_optuna_distributions():
    space = parse_search_space([
        "optim.lr=tag(log, interval(1e-4, 1e-2))", "optim.warmup_steps=tag(int, interval(0, 100))",
        "model.depth=range(2, 10, 2)", "variant=choice(pre_ln, post_ln)", "model.dim=48",
        "seed=1,2", "seed=7",  # a later key (the command line) replaces the preset's
        "model.heads=tag(int, log, interval(1, 8))",
    ])  # fmt: skip
    d = space.distributions
    assert d["optim.lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert d["optim.warmup_steps"] == IntDistribution(0, 100)
    assert d["model.depth"] == IntDistribution(2, 8, step=2)  # Python's range: 10 excluded
    assert d["variant"] == CategoricalDistribution(["pre_ln", "post_ln"])
    assert d["model.heads"] == IntDistribution(1, 8, log=True)
    assert "seed" not in d and space.fixed == {"model.dim": "model.dim=48", "seed": "seed=7"}
    assert grid_values("model.depth", d["model.depth"]) == [2, 4, 6, 8]
    with pytest.raises(ValueError, match="optim.lr is continuous"):
        grid_values("optim.lr", d["optim.lr"])
    for empty in ("x=interval(0.1, 0.1)", "x=tag(log, interval(1e-2, 1e-4))", "x=range(5, 5)"):
        with pytest.raises(ValueError, match="is an empty range"):
            parse_search_space([empty])
    with pytest.raises(ValueError, match="integer ends"):
        parse_search_space(["x=tag(int, interval(0.5, 2))"])
    overrides = space.overrides({"optim.lr": 0.001, "variant": "post_ln"})
    assert overrides == ["model.dim=48", "seed=7", "optim.lr=0.001", "variant=post_ln"]


@pytest.mark.parametrize(
    "value", [1e-5, 3, True, None, "pre_ln", "a b", "it's", "1.0", "sqlite:////tmp/x y/o.db",
              "postgresql+psycopg2://u@127.0.0.1:5432/db", {"name": "median", "n": 2}],
)  # fmt: skip
def test_override_values_read_back_unchanged(value):
    parsed = OverridesParser.create().parse_override(format_override("+k", value))
    assert parsed.value() == value and type(parsed.value()) is type(value)


@pytest.mark.parametrize("name", ["tpe", "random", "grid", "cmaes", "nsga2", "qmc"])
def test_every_sampler_drives_ask_and_tell_over_the_search_space(name):
    if name == "cmaes":
        pytest.importorskip("cmaes", reason="the cmaes sampler needs the cmaes package")
    space = parse_search_space(["a=range(1, 4)", "b=choice(x, y)", "c=range(0, 2)"]).distributions
    sampler = build_sampler({"name": name, "seed": 0}, space)
    study = optuna.create_study(sampler=sampler)
    for _ in range(grid_size({"name": name}, space) or 8):
        t = study.ask(space)
        tell(study, t, [t.params["a"] + t.params["c"] + (t.params["b"] == "y")],
             TrialState.COMPLETE)  # fmt: skip
    seen = {(t.params["a"], t.params["b"], t.params["c"]) for t in study.trials}
    assert seen <= {(a, b, c) for a in (1, 2, 3) for b in ("x", "y") for c in (0, 1)}
    if name == "grid":
        assert len(seen) == len(study.trials) == 12  # every point, once
    if name == "cmaes":
        assert "cmaes" in sys.modules  # CMA-ES itself ran, not only its fallback


def test_pruners_by_name_and_unknown_names_rejected():
    assert isinstance(build_pruner({"name": "hyperband", "min_resource": 10}),
                      optuna.pruners.HyperbandPruner)  # fmt: skip
    assert isinstance(build_pruner({"name": "median", "n_warmup_steps": 5}),
                      optuna.pruners.MedianPruner)  # fmt: skip
    assert isinstance(build_pruner({"name": "none"}), optuna.pruners.NopPruner)
    with pytest.raises(ValueError, match="allowed: median"):
        build_pruner({"name": "mediam"})
    with pytest.raises(ValueError, match="allowed: tpe"):
        build_sampler({"name": "bayes"}, {})


# ---- storages -----------------------------------------------------------------------
def test_storage_urls_become_absolute_and_refuse_passwords(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_storage_url(None, "sw") == f"sqlite:///{tmp_path}/sw/optuna.db"
    assert resolve_storage_url("sqlite:///a.db", "sw") == f"sqlite:///{tmp_path}/a.db"
    assert resolve_storage_url("journal://j/x.log", "sw") == f"journal://{tmp_path}/j/x.log"
    assert resolve_storage_url("journal:///abs/x.log", "sw") == "journal:///abs/x.log"
    assert resolve_storage_url("postgresql://u@h/db", "sw") == "postgresql://u@h/db"
    with pytest.raises(ValueError, match="PGPASSWORD"):
        resolve_storage_url("postgresql://u:secret@h/db", "sw")
    assert dashboard_command("journal:///a b/x.log") == "optuna-dashboard '/a b/x.log'"


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_dead_workers_trials_fail_and_live_ones_do_not(tmp_path, kind):
    url = f"sqlite:///{tmp_path}/o.db" if kind == "sqlite" else f"journal://{tmp_path}/o.log"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="s")
    dead, alive = study.ask(), study.ask()
    with Heartbeat(storage, [dead._trial_id], interval=1):
        pass  # beat once, then the worker "dies"
    with Heartbeat(storage, [alive._trial_id], interval=0.5):
        assert fail_stale_trials(study, storage, grace_period=2) == []
        time.sleep(3.2)
        assert fail_stale_trials(study, storage, grace_period=2) == [dead.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {dead.number: TrialState.FAIL, alive.number: TrialState.RUNNING}


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_optuna_dashboard_opens_the_storage(tmp_path, kind):
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    url = f"sqlite:///{tmp_path}/o.db" if kind == "sqlite" else f"journal://{tmp_path}/o.log"
    study = optuna.create_study(storage=open_storage(url), study_name="dash")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    arg = dashboard_command(url).split(" ", 1)[1]  # what the user types after optuna-dashboard
    app = optuna_dashboard.wsgi(arg)
    status: list[str] = []
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/studies", "SERVER_NAME": "x",
           "SERVER_PORT": "80", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http"}  # fmt: skip
    body = b"".join(app(env, lambda s, h, *a: status.append(s)))
    assert status[0].startswith("200")
    [summary] = json.loads(body)["study_summaries"]
    assert summary["study_name"] == "dash"


# ---- what a summary means for its trial ---------------------------------------------
def summary(status: str, **extra) -> dict:
    s = {"status": status, "steps": 100, "metrics": {"val_best/acc": 0.8, "test/acc": 0.7},
         "config": {"trainer": {"max_steps": 100}},
         "stability": {"spike_count": 0, "grad_norm_max": 2.0, "grad_norm_mean": 1.0}}  # fmt: skip
    s.update(extra)
    return s


def test_instability_orders_diverged_above_spiky_above_smooth():
    smooth = summary("completed", stability={"spike_count": 0, "grad_norm_max": 1.0,
                                             "grad_norm_mean": 1.0})  # fmt: skip
    spiky = summary("completed", stability={"spike_count": 1, "grad_norm_max": 2.718281828,
                                            "grad_norm_mean": 1.0})  # fmt: skip
    late = summary("diverged", stability={"spike_count": 0, "diverged": True,
                                          "diverged_at_step": 90})  # fmt: skip
    early = summary("diverged", stability={"spike_count": 0, "diverged": True,
                                           "diverged_at_step": 10})  # fmt: skip
    assert instability_score(smooth) == 0.0
    assert instability_score(spiky) == pytest.approx(0.5)  # 1 spike / 100 steps, peak = e x mean
    assert instability_score(late) == pytest.approx(1.1)
    assert instability_score(early) == pytest.approx(1.9)
    with pytest.raises(ValueError, match="stability.enabled"):
        instability_score(summary("completed", stability={}))


def test_summary_status_decides_the_trial_state():
    objs = [Objective("val_best/acc", "maximize"), Objective("instability", "minimize")]
    done = outcome_from_summary(summary("completed"), objs)
    assert done.state == TrialState.COMPLETE and done.values[0] == 0.8
    assert done.values[1] == pytest.approx(0.5 * (0 + 0.6931 / 1.6931), abs=1e-4)
    pruned = outcome_from_summary(summary("pruned", pruned_at_step=30), objs)
    assert pruned.state == TrialState.PRUNED and pruned.attrs["pruned_at_step"] == 30
    div = summary("diverged", diverged_at_step=7)
    assert outcome_from_summary(div, objs).state == TrialState.PRUNED
    failed = outcome_from_summary(div, objs, on_diverged="fail")
    assert failed.state == TrialState.FAIL and failed.attrs["diverged_at_step"] == 7
    crash = outcome_from_summary(summary("failed", error="ValueError: x"), objs)
    assert crash.state == TrialState.FAIL and crash.message == "ValueError: x"
    assert outcome_from_summary(None, objs).state == TrialState.FAIL
    missing = outcome_from_summary(summary("completed"), [Objective("test/bpc", "minimize")])
    assert missing.state == TrialState.FAIL and "test/bpc" in missing.message


def test_pareto_front_lists_only_non_dominated_trials():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for acc, inst in [(0.9, 0.5), (0.8, 0.1), (0.7, 0.6), (0.95, 0.9)]:
        t = study.ask({"lr": FloatDistribution(1e-4, 1)})
        t.set_user_attr("run_dir", f"trial_{t.number:04d}")
        study.tell(t, [acc, inst])
    text = format_results(study, ["val_best/acc", "instability"])
    assert "Pareto front (3 of 4 completed" in text
    assert "trial_0002" not in text and all(f"trial_000{i}" in text for i in (0, 1, 3))


# ---- what a job does for itself (resnorm.jobs) ---------------------------------------
def test_jobs_and_training_never_import_the_sweeper():
    """The arrows run one way: sweeps -> training -> jobs; a job needs nothing above it."""
    src = Path(resnorm.__file__).parent
    found = []
    for path in [*(src / "jobs").rglob("*.py"), *(src / "training").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            found += [f"{path.name}: {n}" for n in names if n.startswith("resnorm.sweeps")]
    assert not found
    assert (src / "jobs" / "optuna_pruning.py").is_file()  # the walk saw the job side


def write_summary(run_dir: Path, **fields) -> None:
    run_dir.mkdir(parents=True)
    s = {"run_key": "k", "status": "completed", "task": "image_digits", "variant": "pre_ln",
         "seed": 0, "metrics": {"test/acc": 0.5}, "stability": {}, **fields}  # fmt: skip
    (run_dir / SUMMARY).write_text(json.dumps(s))


def test_index_takes_its_model_columns_from_the_summary_model_dict(tmp_path):
    legacy = {"residual": "on", "norm_position": "pre", "norm": "layernorm", "depth": 2,
              "dim": 64}  # fmt: skip
    write_summary(tmp_path / "0", **legacy)  # written before summaries carried "model"
    with open(write_index(tmp_path), newline="") as f:
        reader = csv.DictReader(f)
        assert [c for c in reader.fieldnames if c in legacy] == list(LEGACY_MODEL_FIELDS)
        assert [r["depth"] for r in reader] == ["2"]
    model = {"heads": 4, "qk_norm": True, **legacy}  # any order: summary.json sorts keys
    write_summary(tmp_path / "new" / "1", **legacy, model=model)
    with open(write_index(tmp_path / "new"), newline="") as f:
        assert next(csv.reader(f))[5:10] == list(LEGACY_MODEL_FIELDS)  # they still lead
    with open(write_index(tmp_path), newline="") as f:
        reader = csv.DictReader(f)
        assert set(model) <= set(reader.fieldnames) and "model" not in reader.fieldnames
        rows = {r["run_dir"]: r for r in reader}
    assert rows["new/1"]["qk_norm"] == "True" and rows["new/1"]["heads"] == "4"
    assert rows["0"]["heads"] == "" and rows["0"]["depth"] == rows["new/1"]["depth"] == "2"
    assert rows["0"]["value"] == "0.5" and rows["0"]["metric"] == "test/acc"


def test_a_job_skips_what_its_directory_already_holds(tmp_path):
    write_summary(tmp_path / "run", status="failed")
    assert previous_status(tmp_path / "run", "k") == "failed"
    assert previous_status(tmp_path / "run", "another config") is None
    assert previous_status(tmp_path / "none", "k") is None
    assert should_skip("failed", rerun_failed=False) and not should_skip("failed", True)
    assert should_skip("completed", True) and not should_skip("running", False)
    assert not should_skip(None, False)


# ---- the Hydra plugin ---------------------------------------------------------------
def test_plugin_is_discovered_and_selected_by_the_preset():
    from hydra import compose, initialize_config_dir
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    from resnorm.paths import conf_dir

    names = [c.__name__ for c in Plugins.instance().discover(Sweeper)]
    assert "ResnormOptunaSweeper" in names
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = compose("train", ["hparams_search=stability_pareto"], return_hydra_config=True)
    sw = cfg.hydra.sweeper
    assert sw._target_.endswith("ResnormOptunaSweeper") and sw.sampler.name == "nsga2"
    assert [o.metric for o in sw.objectives] == ["val_best/acc", "instability"]
    parse_search_space([f"{k}={v}" for k, v in sw.params.items()])  # the preset's space parses


# ---- sweeps as users launch them ----------------------------------------------------
def write_preset(root: Path, name: str, n_trials: int, enqueue: list | None = None) -> list[str]:
    """A preset in a config dir of the test's own (found through hydra.searchpath)."""
    sweeper = {
        "study_name": name, "n_trials": n_trials, "heartbeat_interval": 1, "grace_period": 4,
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        "params": {"optim.lr": "tag(log, interval(1e-3, 1e-2))",
                   "variant": "choice(pre_ln, post_ln)", "optim.warmup_steps": "5"},
        "enqueue": enqueue or [],
    }  # fmt: skip
    body = OmegaConf.to_yaml({"defaults": [{"override /hydra/sweeper": "resnorm_optuna"}],
                              "hydra": {"sweeper": sweeper}})  # fmt: skip
    folder = root / "conf" / "hparams_search"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text("# @package _global_\n" + body)
    return [f"hparams_search={name}", f"hydra.searchpath=[file://{root / 'conf'}]"]


def start_worker(cwd: Path, *overrides: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "resnorm.cli", "train", "-m", *TINY, *overrides]
    return subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url))


def read_summary(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / SUMMARY).read_text())


def check_every_trial_recorded_once(study: optuna.Study, n_trials: int, sweep: Path) -> None:
    """n_trials COMPLETE or PRUNED, nothing left running, every job dir a trial and back."""
    trials = study.get_trials()
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == n_trials, [(t.number, t.state) for t in trials]
    for t in trials:  # the only other trials: not run, as others had filled n_trials
        ok = t.state in (TrialState.COMPLETE, TrialState.PRUNED) or t.user_attrs.get("surplus")
        assert ok, (t.number, t.state, t.user_attrs)
    dirs = sorted(p.parent.name for p in sweep.glob(f"trial_*/{SUMMARY}"))
    assert dirs == [f"trial_{t.number:04d}" for t in counted]  # none lost, none run twice
    for t in counted:
        s = read_summary(t.user_attrs["run_dir"])
        assert s["config"]["optuna"]["trial"] == t.number
        assert s["status"] == t.user_attrs["status"]
        expected = TrialState.COMPLETE if s["status"] == "completed" else TrialState.PRUNED
        assert t.state == expected
        if t.state == TrialState.COMPLETE:
            assert t.value == pytest.approx(s["metrics"]["val_best/acc"])


@pytest.mark.slow
def test_six_trials_with_pruning_and_a_forced_divergence_then_a_relaunch(tmp_path):
    sweep = tmp_path / "sweep"
    enqueue = [
        {"optim.lr": 1e-2, "variant": "pre_ln"},  # a good run: the median to beat
        {"optim.lr": 1e-5, "variant": "pre_ln"},  # barely learns: pruned at its first report
        {"optim.lr": 5.0, "variant": "pre_ln", "optim.grad_clip": None,
         "optim.warmup_steps": 0},  # diverges within a few steps
    ]  # fmt: skip
    args = [*write_preset(tmp_path, "six", 6, enqueue), f"hydra.sweep.dir={sweep}"]
    out = finish(start_worker(tmp_path, *args))
    study = load(f"sqlite:///{sweep}/optuna.db", "six")
    check_every_trial_recorded_once(study, 6, sweep)
    good, slow, wild = study.trials[:3]
    assert good.state == TrialState.COMPLETE and good.params["optim.lr"] == 1e-2
    assert slow.state == TrialState.PRUNED and slow.user_attrs["pruned_at_step"] == 10
    s = read_summary(slow.user_attrs["run_dir"])
    assert s["status"] == "pruned" and s["pruned_at_step"] == 10 and s["steps"] == 10
    assert list(slow.intermediate_values) == [10]
    assert wild.state == TrialState.PRUNED and wild.user_attrs["status"] == "diverged"
    s = read_summary(wild.user_attrs["run_dir"])
    assert s["status"] == "diverged" and s["config"]["optim"]["grad_clip"] is None
    assert 1 <= wild.user_attrs["diverged_at_step"] == s["diverged_at_step"] < 20
    assert wild.user_attrs["instability"] > 1  # diverged: in [1, 2] by definition
    assert "best (maximize val_best/acc)" in out and "optuna-dashboard sqlite:///" in out
    assert len((sweep / "index.csv").read_text().splitlines()) == 1 + 6

    finish(start_worker(tmp_path, *args, "hydra.sweeper.n_trials=7"))  # continues: 1 more
    study = load(f"sqlite:///{sweep}/optuna.db", "six")
    check_every_trial_recorded_once(study, 7, sweep)
    assert sum(t.params.get("optim.lr") == 5.0 for t in study.trials) == 1  # enqueued once


def storage_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    if kind == "journal":
        return f"journal://{tmp_path}/shared.log"
    return request.getfixturevalue("postgres_url")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal", "postgres"])
def test_two_workers_share_one_study(tmp_path, kind, request):
    url = storage_url(kind, tmp_path, request)
    name = f"two_{kind}_{tmp_path.name}"[:60]
    sweep = tmp_path / "sweep"
    args = [*write_preset(tmp_path, "two", 4), f"hydra.sweep.dir={sweep}",
            f"hydra.sweeper.storage={url}", f"hydra.sweeper.study_name={name}"]  # fmt: skip
    workers = [start_worker(tmp_path, *args) for _ in range(2)]
    for w in workers:
        finish(w)
    study = load(url, name)
    check_every_trial_recorded_once(study, 4, sweep)
    ran = {t.user_attrs["worker"] for t in study.trials if not t.user_attrs.get("surplus")}
    assert {f":{w.pid}" for w in workers} == {r[r.rindex(":") :] for r in ran}  # both worked


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_killed_workers_trial_fails_and_the_study_still_completes(tmp_path, kind, request):
    url = storage_url(kind, tmp_path, request)
    sweep = tmp_path / "sweep"
    args = [*write_preset(tmp_path, "kill", 3), f"hydra.sweep.dir={sweep}",
            f"hydra.sweeper.storage={url}", "trainer.max_steps=60"]  # fmt: skip
    victim, survivor = start_worker(tmp_path, *args), start_worker(tmp_path, *args)
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline:
        time.sleep(0.3)
        if victim.poll() is not None:
            pytest.fail("the worker to kill finished first:\n" + victim.stdout.read()[-2000:])
        try:
            trials = load(url, "kill").get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            continue
        for t in trials:
            mine = t.user_attrs.get("worker", "").endswith(f":{victim.pid}")
            if mine and (Path(t.user_attrs["run_dir"]) / SUMMARY).is_file():
                victim.kill()  # SIGKILL mid-trial: no cleanup of any kind
                victim.wait()
                killed = t.number
    assert killed is not None, "the victim never started a trial"
    out = finish(survivor)
    study = load(url, "kill")
    assert study.trials[killed].state == TrialState.FAIL
    assert f"trial {killed} failed: worker" in out
    s = read_summary(study.trials[killed].user_attrs["run_dir"])
    assert s["status"] == "failed" and "stopped beating" in s["error"]
    counted = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == 3
    assert all(t.state != TrialState.RUNNING for t in study.trials)


# ---- a real PostgreSQL server, where its binaries are installed ---------------------
@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    import glob
    import pwd
    import shutil
    import socket
    import tempfile

    pytest.importorskip("psycopg2", reason="PostgreSQL driver psycopg2 is not installed")
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not bins:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    bindir = Path(bins[-1]).parent
    prefix: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="resnorm-pg-"))
    if os.geteuid() == 0:  # postgres refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server")
        os.chown(data, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust")
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data / "db"), "-o", opts, "-l", str(data / "log"),
        "-w", "start")  # fmt: skip
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_storage_retry_survives_the_schema_race_and_nothing_else():
    import sqlalchemy.exc

    from resnorm.jobs.optuna_storage import retry

    calls = []

    def racy():
        calls.append(1)
        if len(calls) == 1:  # what PostgreSQL says to the second worker creating the tables
            orig = Exception('relation "alembic_version" already exists')
            raise sqlalchemy.exc.ProgrammingError("CREATE TABLE", {}, orig)
        return "storage"

    assert retry(racy, wait_s=0.0) == "storage" and len(calls) == 2

    def broken():
        raise sqlalchemy.exc.ProgrammingError("SELECT", {}, Exception("syntax error"))

    with pytest.raises(sqlalchemy.exc.ProgrammingError):
        retry(broken, wait_s=0.0)
