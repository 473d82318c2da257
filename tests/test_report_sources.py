"""Report sources beyond run directories (Optuna storages), the W&B workspace spec, and the
rendered page in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from resnorm.outputs import SUMMARY
from resnorm.report.sources.wandb_project import run_row
from resnorm.variants import definitions
from test_report import ENV, make_sweep, resnorm


@pytest.fixture(scope="session")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory)


def make_storage(path: Path, sweep: Path, n_trials: int, study_name: str) -> str:
    """A real Optuna storage whose trials point at real runs, as the sweeper records them."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    url = f"sqlite:///{path}"
    study = optuna.create_study(
        storage=url, study_name=study_name, directions=["maximize", "minimize"]
    )
    study.set_metric_names(["test/acc", "instability"])
    runs = sorted(p.parent for p in sweep.rglob(SUMMARY))
    dists = {
        "variant": CategoricalDistribution(["pre_ln", "post_ln", "no_norm"]),
        "optim.lr": FloatDistribution(1e-4, 1e-1, log=True),
    }
    for i in range(n_trials):
        run = runs[i % len(runs)]
        s = json.loads((run / SUMMARY).read_text())
        acc, inst = s["metrics"]["test/acc"], 0.1 + 0.05 * (i % 4)
        study.add_trial(
            optuna.trial.create_trial(
                params={"variant": s["variant"], "optim.lr": 10 ** (-4 + 3 * i / n_trials)},
                distributions=dists,
                values=[acc, inst],
                user_attrs={"run_dir": str(run), "status": "completed", "instability": inst},
            )
        )
    return url


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_optuna_storage_gives_pareto_front_and_importances(sweep, tmp_path):
    url = make_storage(tmp_path / "study.db", sweep, 9, "big")
    make_storage(tmp_path / "study.db", sweep, 2, "tiny")
    out = tmp_path / "rep"
    res = resnorm("report", url, "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    md = (out / "report.md").read_text()
    big = md.split("## Optuna study `big`")[1].split("## ")[0]
    tiny = md.split("## Optuna study `tiny`")[1].split("## ")[0]
    assert "Pareto front (test/acc vs instability): trials #" in big
    assert "parameter importances for test/acc (fANOVA):" in big and "variant" in big
    assert (out / "pareto_big.png").is_file() and (out / "importance_big.svg").is_file()
    assert "parameter importances: not computed (2 completed trials" in tiny
    # the trials' runs were read from their summary.json; two trials of 'tiny' point at runs
    # of 'big': each run is counted once
    assert "9 runs (9 completed)" in md and md.count("counted once") == 2


@pytest.mark.slow
def test_wandb_workspace_spec_offline(sweep, tmp_path):
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces.workspaces import internal

    out = tmp_path / "rep"
    res = resnorm(
        "report",
        str(sweep),
        "--out",
        str(out),
        "--wandb-workspace",
        "--wandb-project",
        "me/resnorm",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    spec = json.loads((out / "wandb_workspace.json").read_text())
    assert (spec["entity"], spec["project"], spec["group_by"]) == ("me", "resnorm", "model.variant")
    text = json.dumps(spec["workspace"])
    for metric in ("test/acc", "train/loss", "stability/grad_norm", "stability/spike_count"):
        assert f'"{metric}"' in text, metric
    sections = [s["name"] for s in spec["workspace"]["sections"]]
    assert sections[:2] == [
        "Headline metrics (grouped by variant)",
        "Stability (grouped by variant)",
    ]
    assert spec["workspace"]["runset_settings"]["groupby"] == [{"name": "model.variant"}]
    # the stored view is what W&B saves; it reads back into an equivalent Workspace
    back = ws.Workspace._from_model(internal.View.model_validate(spec["view"]))
    assert [s.name for s in back.sections] == sections
    assert [len(s.panels) for s in back.sections] == [
        len(s["panels"]) for s in spec["workspace"]["sections"]
    ]
    assert (
        "not saved to W&B: W&B 'me/resnorm': WANDB_MODE=offline" in (out / "report.md").read_text()
    )


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_index_html_renders_in_headless_chromium(sweep, tmp_path):
    out = tmp_path / "rep"
    assert resnorm("report", str(sweep), "--out", str(out), cwd=tmp_path).returncode == 0
    url = (out / "index.html").resolve().as_uri()
    n_figs = len(list(out.glob("*.png")))

    def browse(*args: str, profile: str) -> subprocess.CompletedProcess:
        (tmp_path / profile).mkdir()
        return subprocess.run(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={tmp_path / profile}",
                "--virtual-time-budget=10000",
                *args,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env=ENV,
        )

    dom = browse("--dump-dom", profile="p1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert f'data-figures="{n_figs}"' in body and f'data-figures-loaded="{n_figs}"' in body, body
    assert "Findings" in dom.stdout and "(j) LayerNorm adds parameters" in dom.stdout
    shot = tmp_path / "shot.png"
    res = browse(f"--screenshot={shot}", "--window-size=1280,3000", profile="p2")
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_wandb_run_is_named_like_its_run_directory():
    """A W&B run (its flat config and summary, as ``wandb.Api`` returns them) gets the same
    architecture name a run directory would: its variant plus the fields it overrode."""

    def run(**model: object) -> SimpleNamespace:
        flat = {f"model.{k}": v for k, v in {**definitions()["pre_ln"], **model}.items()}
        config = {**flat, "task.name": "image_digits", "seed": 0, "optim.lr": 1e-3}
        summary = {"test/acc": 0.5, "_step": 10}
        return SimpleNamespace(id="abc", state="finished", config=config, summary=summary)

    assert run_row(run(), "me/p")["arch"] == "pre_ln"
    assert run_row(run(norm="rmsnorm"), "me/p")["arch"] == "rmsnorm_pre"
    row = run_row(run(activation="relu", depth=2), "me/p")
    assert (row["arch"], row["depth"], row["status"]) == ("pre_ln[activation=relu]", 2, "completed")
    # keyed by the run key resnorm records in the run's summary (matches its run directory)
    assert row["run_key"] == "abc"
    keyed = run()
    keyed.summary["run_key"] = "0123456789abcdef"
    assert run_row(keyed, "me/p")["run_key"] == "0123456789abcdef"
