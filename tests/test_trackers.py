"""What the trackers get: train/lr beside train/loss, TensorBoard hparams with final
metrics, W&B ids that follow a resume, groups and names per study, one quiet line per
W&B run, and a saved workspace spec pushed later (refused offline in one line)."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from resnorm.outputs import SUMMARY
from resnorm.training.loggers import tracker_names, wandb_run_id
from resnorm.training.optim import lr_factor

RESNORM = [sys.executable, "-m", "resnorm.cli"]
# W&B's console lines are resnorm's to silence, so WANDB_SILENT is not set here
ENV = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
ENV.update({"WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore", "OMP_WAIT_POLICY": "PASSIVE"})
TINY = ["model.dim=32", "model.depth=2", "trainer.num_threads=1", "task.val_every=15"]


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([*RESNORM, "train", *args, *TINY], cwd=cwd, env=ENV,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def expected_lr(summary: dict, step: int) -> float:
    """The LR of the update at ``step`` (0-based), as the optimizer's schedule gives it."""
    o, total = summary["config"]["optim"], summary["config"]["trainer"]["max_steps"]
    factor = lr_factor(step, o["warmup_steps"], total, o["schedule"], o["min_lr_ratio"])
    return o["lr"] * factor


def wandb_run_record(offline_dir: Path) -> object:
    """The run record (id, group, display name) of an offline W&B run, read from its
    ``.wandb`` file (W&B's log: 32 KiB blocks of crc32 / length / type-framed records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = next(offline_dir.glob("*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        buf, pos = buf + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = pb.Record.FromString(buf)
            buf = b""
            if record.WhichOneof("record_type") == "run":
                return record.run
        elif kind == 0:
            break
    raise AssertionError(f"no run record in {offline_dir}")


# --- train/lr and TensorBoard hparams -----------------------------------------------------


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tb")
    train("logger=tensorboard", "trainer.max_steps=60", f"hydra.run.dir={root / 'run'}", cwd=root)
    return root / "run"


def test_train_lr_is_logged_beside_train_loss_with_the_lr_each_step_used(tb_run):
    summary = json.loads((tb_run / SUMMARY).read_text())
    rows = [r for r in csv_rows(tb_run) if r.get("train/loss")]
    assert [int(r["step"]) for r in rows] == [9, 19, 29, 39, 49, 59]
    assert all(r["train/lr"] for r in rows)  # the same rows: beside each loss
    # exactly (float64 all the way): warmup over 50 steps, then the cosine decay
    assert [float(r["train/lr"]) for r in rows] == [
        expected_lr(summary, int(r["step"])) for r in rows
    ]
    assert not [r for r in csv_rows(tb_run) if r.get("train/lr") and not r.get("train/loss")]


def _tb_events(run_dir: Path) -> tuple[dict, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    scalars, hparams = {}, []
    for path in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path))
        acc.Reload()
        scalars.update({tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]})
        try:
            content = acc.PluginTagToContent("hparams")
        except KeyError:  # an event file without the hparams summaries
            content = {}
        hparams += [plugin_data_pb2.HParamsPluginData.FromString(c) for c in content.values()]
    return scalars, hparams


def test_tensorboard_gets_train_lr_and_hparams_with_final_metrics(tb_run):
    summary = json.loads((tb_run / SUMMARY).read_text())
    scalars, hparams = _tb_events(tb_run)
    assert [e.step for e in scalars["train/lr"]] == [e.step for e in scalars["train/loss"]]
    assert scalars["train/lr"][0].value == pytest.approx(expected_lr(summary, 9))
    start = next(h.session_start_info for h in hparams if h.HasField("session_start_info"))
    values = {k: v.string_value or v.number_value or v.bool_value for k, v in start.hparams.items()}
    assert values["variant"] == "pre_ln" and values["depth"] == 2 and values["dim"] == 32
    assert values["lr"] == pytest.approx(summary["lr"]) and values["status"] == "completed"
    assert values["optim.warmup_steps"] == 50 and values["task.name"] == "image_digits"
    experiment = next(h.experiment for h in hparams if h.HasField("experiment"))
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert {"test/acc", "test/loss", "val_best/acc"} <= metrics
    # the HParams tab reads a metric's value from the scalar of that tag: the final one
    assert scalars["test/acc"][-1].value == pytest.approx(summary["metrics"]["test/acc"])
    saved = (tb_run / "tensorboard" / "hparams.yaml").read_text()
    assert saved.strip() != "{}" and "variant: pre_ln" in saved and "status: completed" in saved


# --- W&B: ids, groups, names, console ------------------------------------------------------


def test_wandb_run_id_follows_run_key_and_directory(tmp_path):
    a = wandb_run_id(tmp_path / "a", "0123456789abcdef")
    assert re.fullmatch(r"[a-z0-9]{1,64}", a) and a.startswith("0123456789abcdef")
    assert wandb_run_id(tmp_path / "a", "0123456789abcdef") == a
    assert wandb_run_id(tmp_path / "b", "0123456789abcdef") != a
    assert wandb_run_id(tmp_path / "a", "fedcba9876543210") != a


def test_tracker_names_of_a_single_run(tmp_path):
    cfg = OmegaConf.create({"logger": {"group": None}})
    assert tracker_names(cfg, tmp_path / "14-03-22_x") == ("14-03-22_x", "14-03-22_x")
    cfg = OmegaConf.create({"logger": {"group": None}, "study": {"name": "quick"}})
    assert tracker_names(cfg, tmp_path / "job") == ("quick", "quick/job")
    cfg = OmegaConf.create({"logger": {"group": "mine"}, "study": {"name": "quick"}})
    assert tracker_names(cfg, tmp_path / "job") == ("mine", "quick/job")


def test_adhoc_sweep_pack_groups_by_sweep_dir_with_one_quiet_line_per_run(tmp_path):
    sweep = tmp_path / "lr_probe"
    out = train("-m", "logger=wandb", "optim.lr=1e-3,3e-3", "pack=2", "trainer.max_steps=30",
                f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    runs = sorted(p.parent for p in sweep.glob(f"*/{SUMMARY}"))
    assert len(runs) == 2
    summaries = [json.loads((r / SUMMARY).read_text()) for r in runs]
    assert all(s["pack"]["size"] == 2 for s in summaries)  # trained as one pack
    ids = []
    for run, summary in zip(runs, summaries, strict=True):
        (offline,) = (run / "wandb").glob("offline-run-*")
        record = wandb_run_record(offline)
        assert record.run_group == "lr_probe"  # the sweep directory's name, not "single"
        assert record.display_name == f"lr_probe/{run.name}"
        assert record.run_id == summary["wandb_run_id"] == offline.name.rsplit("-", 1)[1]
        ids.append(record.run_id)
        # each member's own LR, beside its loss
        rows = [r for r in csv_rows(run) if r.get("train/loss")]
        assert float(rows[0]["train/lr"]) == expected_lr(summary, int(rows[0]["step"]))
    assert ids[0] != ids[1]
    lrs = [float(csv_rows(r)[-1].get("train/lr") or "nan") for r in runs]
    assert summaries[0]["lr"] != summaries[1]["lr"] and lrs[0] != lrs[1]
    # W&B's own console lines are silenced; resnorm says one line per run
    text = out.stdout + out.stderr
    assert not [ln for ln in text.splitlines() if ln.startswith("wandb:")], text[-2000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("resnorm: W&B run ")]
    assert sorted(ln.split()[3] for ln in lines) == sorted(ids)
    assert all("completed: offline, sync: wandb sync " in ln for ln in lines)


@pytest.mark.slow
def test_sigkilled_wandb_run_resumes_into_the_same_wandb_run(tmp_path):
    run = tmp_path / "run"
    args = [*TINY, "logger=wandb", "trainer.max_steps=400", "trainer.ckpt_every=20",
            f"hydra.run.dir={run}"]  # fmt: skip
    proc = subprocess.Popen([*RESNORM, "train", *args], cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    ckpt = run / "checkpoints" / "last.ckpt"
    end = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < end:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and json.loads((run / SUMMARY).read_text())["status"] == "running"
    # W&B names an offline run's directory offline-run-<time>-<id> (a killed process may not
    # have written its run record to the .wandb file yet)
    (before,) = (run / "wandb").glob("offline-run-*")
    first_id = before.name.rsplit("-", 1)[1]
    out = subprocess.run([*RESNORM, "train", *args], cwd=tmp_path, env=ENV,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / SUMMARY).read_text())
    assert summary["status"] == "completed" and summary["resumed"] == 1
    offline = sorted((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and offline[0] == before  # each process's part, one run id
    assert [d.name.rsplit("-", 1)[1] for d in offline] == [first_id, first_id]
    assert wandb_run_record(offline[1]).run_id == first_id
    assert summary["wandb_run_id"] == first_id


# --- the W&B workspace spec: said on the terminal, pushed later ----------------------------


@pytest.fixture
def spec_file(tmp_path, monkeypatch, capsys) -> Path:
    from resnorm.report.render.workspace import SPEC_FILE, publish

    monkeypatch.setenv("WANDB_MODE", "offline")
    data = SimpleNamespace(runs={"metric": ["test/acc"]}, title="trackers")
    where = publish(data, [], tmp_path, "me/resnorm")
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    path = tmp_path / SPEC_FILE
    assert len(err) == 1 and str(path) in err[0], err
    assert f"resnorm workspace push {path}" in err[0] and "WANDB_MODE=offline" in err[0]
    assert f"push it later: resnorm workspace push {path}" in where  # report.md says it too
    return path


def push_cli(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    out = subprocess.run([*RESNORM, "workspace", "push", *args], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    return out, time.perf_counter() - t0


@pytest.mark.parametrize(
    "env",
    [
        {"WANDB_MODE": "offline"},
        # an API key, and a host that refuses connections: no network to reach
        {"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"},
    ],
    ids=["offline", "unreachable"],
)
def test_push_without_network_fails_in_one_line(spec_file, env):
    out, took = push_cli(str(spec_file), env={**ENV, "WANDB_MODE": "", **env})
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    assert lines[0].startswith("resnorm workspace: error: W&B 'me/resnorm'")
    assert took < 15 and out.stdout == ""


def test_push_of_a_file_that_is_no_spec_is_refused(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[]")
    out, _ = push_cli(str(bad), env=ENV)
    assert out.returncode == 2 and "not a workspace spec" in out.stderr
    out, _ = push_cli(str(tmp_path / "missing.json"), env=ENV)
    assert out.returncode == 2 and out.stderr.count("\n") == 1


def test_push_saves_the_spec_s_workspace(spec_file, monkeypatch):
    import wandb_workspaces.workspaces as ws

    from resnorm.report.render import workspace

    saved = []
    monkeypatch.setattr(workspace, "check_online", lambda *a, **k: "https://w.example")
    monkeypatch.setattr(ws.Workspace, "save", lambda self: saved.append(self) or self)
    workspace.push(spec_file)
    workspace.push(spec_file, "team/other")
    assert [(w.entity, w.project) for w in saved] == [("me", "resnorm"), ("team", "other")]
    spec = json.loads(spec_file.read_text())["workspace"]
    assert [s.name for s in saved[0].sections] == [s["name"] for s in spec["sections"]]
    assert [len(s.panels) for s in saved[0].sections] == [
        len(s["panels"]) for s in spec["sections"]
    ]
    assert '"train/lr"' in json.dumps(spec)  # the LR panel beside train/loss
