"""Input checks, load-independent stderr, safe report names, a training path without
matplotlib, and the TensorBoard logger: each as a user meets it."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resnorm.omp import CHOICE_ENV, record_wait_policy, recorded_wait_policy
from resnorm.outputs import SUMMARY
from resnorm.report.cli import main as report_main
from resnorm.report.figures.base import safe_filename
from resnorm.report.render.html import LOAD_SCRIPT
from resnorm.training.validate import check_config

HAS_PROC_STAT = Path("/proc/stat").is_file()
BASE_ENV = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", CHOICE_ENV)}
BASE_ENV.update({"WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"})


def resnorm(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "resnorm.cli", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def stderr_lines(out: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in out.stderr.splitlines() if ln.strip()]


class Spinner:
    """Another process keeping a core busy, as on a shared machine."""

    def __enter__(self) -> Spinner:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)  # let it start spinning
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


# --- bad input: one line on stderr however busy the machine is, and nothing written ------


@pytest.mark.skipif(not HAS_PROC_STAT, reason="needs Linux /proc/stat")
@pytest.mark.parametrize(
    "overrides,fragment",
    [
        (["model.dim=-8"], "model.dim=-8"),
        (["variant=pre_ln", "model.residual=deepnorm"], "requires model.norm_position=post"),
    ],
)
def test_bad_input_on_a_busy_machine_is_still_one_line(tmp_path, overrides, fragment):
    # no policy in the environment: resnorm chooses one, and the busy core makes it PASSIVE
    with Spinner():
        out = resnorm("train", *overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                      env=BASE_ENV)  # fmt: skip
    assert out.returncode != 0
    errors = stderr_lines(out)
    assert len(errors) == 1, out.stderr
    assert errors[0].startswith("resnorm: error:") and fragment in errors[0], errors[0]


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["seed=abc"], "seed='abc' must be an integer"),
        (["optim.lr=inf"], "optim.lr=inf must be a positive finite number"),
    ],
)
def test_bad_values_fail_in_one_line_before_anything_is_written(tmp_path, overrides, message):
    env = {**BASE_ENV, "OMP_WAIT_POLICY": "PASSIVE"}
    out = resnorm("train", *overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=env)
    assert out.returncode != 0
    errors = stderr_lines(out)
    assert len(errors) == 1 and errors[0].startswith(f"resnorm: error: {message}"), out.stderr
    assert not list(tmp_path.rglob(SUMMARY))  # no "failed" summary: the run never started
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "override,fragment",
    [
        ("seed=abc", "seed='abc' must be an integer"),
        ("seed=1.5", "seed=1.5 must be an integer"),
        ("seed=true", "seed=True must be an integer"),
        ("seed=-1", "seed=-1 must be an integer from 0 to 4294967295"),
        ("seed=4294967296", "seed=4294967296 must be"),
        ("optim.lr=inf", "optim.lr=inf must be a positive finite number"),
        ("optim.lr=-inf", "optim.lr=-inf"),
        ("optim.lr=nan", "optim.lr=nan"),
        ("optim.lr=abc", "optim.lr='abc'"),
        ("optim.weight_decay=inf", "optim.weight_decay=inf must be a finite number >= 0"),
        ("optim.warmup_steps=1.5", "optim.warmup_steps=1.5 must be an integer >= 0"),
    ],
)
def test_config_check_names_the_key(compose_cfg, override, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        check_config(compose_cfg(override))


def test_largest_seed_and_finite_lrs_pass(compose_cfg):
    check_config(compose_cfg("seed=4294967295", "optim.lr=1e-3", "optim.weight_decay=0"))


# --- the wait policy: recorded for the run, not printed ------------------------------------


@pytest.mark.skipif(not HAS_PROC_STAT, reason="needs Linux /proc/stat")
def test_passive_choice_is_recorded_with_the_load_and_inherited_as_resnorms():
    env: dict[str, str] = {}
    with Spinner():
        choice = record_wait_policy(env)
    assert choice["policy"] == "PASSIVE" and choice["busy_cores"] >= 0.5
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and json.loads(env[CHOICE_ENV]) == choice
    child = dict(env)  # a launcher's child process: resnorm chose PASSIVE, not the user
    assert record_wait_policy(child) == choice and recorded_wait_policy(child) == choice


def test_a_users_policy_is_recorded_as_the_users():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert record_wait_policy(env) == {"policy": "user:ACTIVE", "busy_cores": None}
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"
    # a record that no longer matches the environment is not believed
    stale = {"OMP_WAIT_POLICY": "ACTIVE", CHOICE_ENV: json.dumps({"policy": "PASSIVE"})}
    assert recorded_wait_policy(stale)["policy"] == "user:ACTIVE"
    assert recorded_wait_policy({})["policy"] == "default"


# --- one tiny real run: the training path, its summary and its TensorBoard events ----------

TRAIN = """
import json, sys
from resnorm.cli import main
rc = main(["train", "logger=tensorboard", "trainer.max_steps=10", "task.val_every=5",
           "model.dim=32", "model.depth=2", "hydra.run.dir=" + sys.argv[1]])
mpl = sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib")
print(json.dumps({"rc": rc, "matplotlib": mpl}))
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tiny")
    env = {**BASE_ENV, "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run([sys.executable, "-c", TRAIN, str(root / "run")], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return root / "run", json.loads(out.stdout.strip().splitlines()[-1])


def test_training_never_imports_matplotlib(tiny_run):
    _, result = tiny_run
    assert result["rc"] == 0 and result["matplotlib"] == []


def test_summary_records_the_wait_policy(tiny_run):
    run_dir, _ = tiny_run
    summary = json.loads((run_dir / SUMMARY).read_text())
    assert summary["status"] == "completed"
    assert summary["omp_wait_policy"] == {"policy": "user:PASSIVE", "busy_cores": None}


def test_tensorboard_logger_writes_events_tensorboard_reads(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = tiny_run
    events = sorted((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events, list(run_dir.iterdir())
    scalars = {}
    for path in events:
        acc = EventAccumulator(str(path))
        acc.Reload()
        scalars.update({tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]})
    loss = scalars["train/loss"]
    assert [e.step for e in loss] == [9] and loss[0].value > 0  # logged every 10 steps
    assert "test/acc" in scalars and "val/acc" in scalars


# --- names from anyone's runs in the report ------------------------------------------------

TASK = 'a/b <script>&"x" $\\notacommand$'
VARIANT = "v/1|x<i>"


def fake_run(root: Path, task: str, variant: str, depth: int, lr: float, seed: int) -> None:
    """A run directory in the outputs contract (summary.json, CSV log), written by hand."""
    run_dir = root / f"{variant[:1]}_d{depth}_lr{lr:g}_s{seed}"
    (run_dir / "csv").mkdir(parents=True)
    acc = 0.9 - 0.2 * (lr > 5e-3) - 0.01 * seed
    # norm_eps 0.123 matches no conf/variant: the run keeps its own variant name
    model = {"residual": "on", "norm_position": "pre", "norm": "layernorm", "norm_eps": 0.123,
             "activation": "gelu", "attn_scale": True, "qk_norm": False, "depth": depth,
             "dim": 32, "heads": 4}  # fmt: skip
    summary = {
        "schema": 1, "run_key": f"{variant}-{depth}-{lr}-{seed}", "status": "completed",
        "task": task, "variant": variant, "seed": seed, "lr": lr, "warmup_steps": 0,
        "metrics": {"test/acc": acc, "test/loss": 2.3 * (1 - acc)}, "stability": {},
        "steps": 20, "wall_s": 1.0, "chance": 0.1, "model": model,
        "config": {"trainer": {"max_steps": 20}, "optim": {"lr": lr, "warmup_steps": 0}},
    }  # fmt: skip
    (run_dir / SUMMARY).write_text(json.dumps(summary))
    rows = [f"{s},{2.3 - 0.05 * s},{acc}" for s in range(0, 20, 5)]
    (run_dir / "csv" / "metrics.csv").write_text("step,train/loss,val/acc\n" + "\n".join(rows))


def test_any_task_and_variant_name_is_safe_in_the_report(tmp_path):
    runs = tmp_path / "runs"
    for variant in (VARIANT, "w"):
        for depth in (2, 4):
            for lr in (1e-4, 1e-3, 1e-2):
                for seed in (0, 1):
                    fake_run(runs, TASK, variant, depth, lr, seed)
    out = tmp_path / "report"
    assert report_main([str(runs), "--out", str(out)]) == 0
    files = sorted(p for p in out.rglob("*"))
    assert all(p.parent == out and p.is_file() for p in files), files  # no folders from "/"
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in files), files
    stems = {p.stem for p in out.glob("*.png")}
    for prefix in ("curves_", "frontier_"):
        assert safe_filename(prefix + TASK) in stems, stems
    assert {p.stem for p in out.glob("*.svg")} == stems

    page = (out / "index.html").read_text()
    assert html.escape(TASK) in page and html.escape(VARIANT) in page
    assert page.count("<script") == LOAD_SCRIPT.count("<script")  # the page's own only
    assert "<i>" not in page

    md = (out / "report.md").read_text()
    assert "a/b \\<script>" in md and "v/1\\|x\\<i>" in md  # shown as text, not HTML
    assert not re.search(r"(?<!\\)<(script|i>)", md)
    header = next(ln for ln in md.splitlines() if ln.startswith("| task | variant |"))
    row = next(ln for ln in md.splitlines() if ln.startswith("| a/b") and "v/1" in ln)
    cells = re.compile(r"(?<!\\)\|")  # a cell's own "|" is escaped
    assert len(cells.findall(row)) == len(cells.findall(header)), row
    for stem in stems:
        assert f"({stem}.png)" in md


def test_safe_filename_is_safe_distinct_and_leaves_plain_names_alone():
    assert safe_filename("curves_image_digits") == "curves_image_digits"
    names = ["a/b", "a_b", "a\\b", "a b", "..", "", ".hidden", "é", "x" * 400]
    stems = [safe_filename(n) for n in names]
    assert len(set(stems)) == len(names), stems
    assert all(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", s) for s in stems), stems
    assert all(len(s) <= 120 for s in stems)
    assert safe_filename("a/b") == safe_filename("a/b")  # stable across reports


@pytest.mark.slow
def test_the_wait_policy_line_is_written_once_per_process_not_per_member(tmp_path):
    choice = json.dumps({"policy": "PASSIVE", "busy_cores": 1.5})
    env = {**BASE_ENV, "OMP_WAIT_POLICY": "PASSIVE", CHOICE_ENV: choice, "WANDB_MODE": "offline"}
    out = resnorm("train", "-m", "task=image_digits", "model.depth=1", "model.dim=16",
                  "trainer.max_steps=2", "seed=0,1,2", "pack=3",
                  f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert (out.stdout + out.stderr).count("OMP_WAIT_POLICY=PASSIVE") == 1
    assert len(list((tmp_path / "sweep").glob(f"*/{SUMMARY}"))) == 3
