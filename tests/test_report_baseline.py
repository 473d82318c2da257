"""`resnorm report NEW --baseline OLD` on real tiny runs: a study against copies of itself
with edited summaries (a shifted metric, changed statuses, runs removed or re-keyed)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from resnorm.outputs import SUMMARY
from resnorm.report.analysis.baseline import Comparison, compare
from resnorm.report.render import baseline as section
from resnorm.report.sources.classify import classify
from resnorm.report.sources.collect import load_sources

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
SEEDS = (0, 1, 2)


def resnorm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resnorm.cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """Three seeds of one tiny config, trained once for the module (~15 s)."""
    root = tmp_path_factory.mktemp("baseline_study")
    out = resnorm("train", "-m", "task=image_digits", "model.depth=1", "model.dim=16",
                  "trainer.max_steps=20", "seed=0,1,2", f"hydra.sweep.dir={root / 'sweep'}",
                  cwd=root)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(list((root / "sweep").rglob(SUMMARY))) == len(SEEDS)
    return root / "sweep"


def copy(study: Path, dest: Path) -> Path:
    shutil.copytree(study, dest)
    return dest


def run_of(sweep: Path, seed: int) -> Path:
    (path,) = [p.parent for p in sweep.rglob(SUMMARY) if read(p.parent)["seed"] == seed]
    return path


def read(run: Path) -> dict:
    return json.loads((run / SUMMARY).read_text())


def edit(run: Path, **metrics: float) -> None:
    """Set summary fields (``status``, ``run_key``, ...) or test metrics (``acc=...``)."""
    data = read(run)
    for k, v in metrics.items():
        if k in ("status", "run_key"):
            data[k] = v
        else:
            data["metrics"][f"test/{k}"] = v
    (run / SUMMARY).write_text(json.dumps(data))


def shift(run: Path, by: float) -> None:
    edit(run, acc=read(run)["metrics"]["test/acc"] + by)


def compared(new: Path, old: Path) -> Comparison:
    a, _ = load_sources([classify(str(new))])
    b, _ = load_sources([classify(str(old))])
    return compare(a.runs, b.runs, [str(old)])


def paired_t(diffs: list[float]) -> tuple[float, float, float]:
    """The paired 95% t-interval, computed here on its own: (mean, low, high)."""
    d = np.asarray(diffs)
    half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


def acc_diffs(new: Path, old: Path) -> list[float]:
    def acc(sweep: Path, seed: int) -> float:
        return read(run_of(sweep, seed))["metrics"]["test/acc"]

    return [acc(new, s) - acc(old, s) for s in SEEDS]


def test_a_copy_is_identical(study, tmp_path):
    cmp = compared(study, copy(study, tmp_path / "old"))
    assert cmp.summary_line() == (
        "baseline: 3 runs matched (3 identical, 0 unfinished), 0 cells changed beyond the "
        "noise, 0 runs changed status, 0 only in NEW, 0 only in OLD"
    )
    (cell,) = cmp.cells
    assert (cell.pairs, cell.seeds, cell.identical, cell.status_changed) == (3, 3, 3, 0)
    assert cell.value_zero and cell.loss_zero and not cell.beyond_noise()
    head, rows = section.cell_table(cmp)
    assert rows[0][head.index("mean Δ metric [95% CI]")] == "identical"
    assert rows[0][-1] == "identical"
    assert section.run_table(cmp) == ([], [])
    assert compared(study, study).identical == 3  # a study against itself, same folder


def test_one_seed_shifted_is_listed_and_its_interval_is_the_paired_t(study, tmp_path):
    new = copy(study, tmp_path / "new")
    shift(run_of(new, 0), 0.05)
    cmp = compared(new, study)
    (cell,) = cmp.cells
    mean, low, high = paired_t(acc_diffs(new, study))
    assert cell.value.mean == pytest.approx(0.05 / 3, abs=1e-12)
    assert (cell.value.mean, cell.value.low, cell.value.high) == pytest.approx((mean, low, high))
    assert cell.value.df == 2 and cell.value.n == 3
    assert low < 0 < high  # one of three seeds moved: within the noise at n = 3
    assert cell.beyond_noise() == [] and cell.loss_zero and cell.identical == 2
    assert section.flag(cell) == "within the noise"
    (changed,) = section.run_table(cmp)[1]
    assert changed[0] == str(run_of(new, 0)) and changed[-1] == "changed"
    assert "(2 identical, 0 unfinished), 0 cells changed beyond the noise" in cmp.summary_line()


def test_all_seeds_shifted_is_beyond_the_noise(study, tmp_path):
    new = copy(study, tmp_path / "new")
    for seed, noise in zip(SEEDS, (0.001, -0.002, 0.0015), strict=True):
        shift(run_of(new, seed), 0.05 + noise)
    cmp = compared(new, study)
    (cell,) = cmp.cells
    mean, low, high = paired_t(acc_diffs(new, study))
    assert (cell.value.mean, cell.value.low, cell.value.high) == pytest.approx((mean, low, high))
    assert low > 0
    assert cell.beyond_noise() == ["test/acc"]
    assert section.flag(cell) == "changed beyond the noise (test/acc)"
    assert "(0 identical, 0 unfinished), 1 cells changed beyond the noise" in cmp.summary_line()
    assert len(cmp.changed_cells) == 1


def test_runs_on_one_side_are_counted(study, tmp_path):
    new = copy(study, tmp_path / "new")
    shutil.rmtree(run_of(new, 2))  # only in OLD
    edit(run_of(new, 1), run_key="another-config")  # only in NEW, and its key only in OLD
    shift(run_of(new, 0), 0.05)
    cmp = compared(new, study)
    assert (len(cmp.pairs), len(cmp.only_new), len(cmp.only_old)) == (1, 1, 2)
    assert cmp.summary_line().endswith("1 only in NEW, 2 only in OLD")
    assert sorted(cmp.only_old["seed"]) == [1, 2]
    (cell,) = cmp.cells  # one pair left: a mean without an interval, and said so
    assert cell.seeds == 1 and not cell.value.has_ci and not cell.beyond_noise()
    head, rows = section.cell_table(cmp)
    assert rows[0][head.index("mean Δ metric [95% CI]")].endswith("(1 seed, no interval)")
    assert section.flag(cell) == "changed, no interval (1 seed)"
    titles = [b[0] for b in section.blocks(cmp) if isinstance(b, tuple)]
    assert "Only in NEW (1 runs)" in titles and "Only in OLD (2 runs)" in titles


def test_status_changes_are_flagged_and_unfinished_runs_never_averaged(study, tmp_path):
    new = copy(study, tmp_path / "new")
    edit(run_of(new, 1), status="diverged", acc=math.nan, loss=math.nan)  # scores chance
    edit(run_of(new, 2), status="failed", acc=0.99)  # not finished: listed, not averaged
    cmp = compared(new, study)
    assert (len(cmp.pairs), len(cmp.not_compared), cmp.status_changes) == (2, 1, 2)
    assert "(1 identical, 1 unfinished)" in cmp.summary_line()
    assert "2 runs changed status" in cmp.summary_line()
    (cell,) = cmp.cells
    chance = read(run_of(study, 1))["chance"]
    old_acc = read(run_of(study, 1))["metrics"]["test/acc"]
    assert cell.pairs == 2 and cell.value.mean == pytest.approx((chance - old_acc) / 2)
    assert section.flag(cell).startswith("status changed (1 of 2 runs)")
    notes = {row[3]: row[-1] for row in section.run_table(cmp)[1]}
    assert notes == {"1": "status changed", "2": "not compared: unfinished; status changed"}


def test_cli_prints_the_line_and_writes_the_section(study, tmp_path):
    new = copy(study, tmp_path / "new")
    shift(run_of(new, 0), 0.05)
    out = resnorm("report", str(new), "--baseline", str(study), "--out", str(tmp_path / "r"),
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    line = re.search(r"^resnorm report: baseline: .*$", out.stdout, re.M)
    assert line and line.group(0) == (
        "resnorm report: baseline: 3 runs matched (2 identical, 0 unfinished), 0 cells changed "
        "beyond the noise, 0 runs changed status, 0 only in NEW, 0 only in OLD"
    )
    md = (tmp_path / "r" / "report.md").read_text()
    assert md.index("## Before/after") < md.index("## Verdicts")
    assert "| image_digits | pre_ln | 1 | test/acc | 3 | 3 | 2/3 |" in md
    html = (tmp_path / "r" / "index.html").read_text()
    assert html.index("id='baseline'") < html.index("id='verdicts'")
    bad = resnorm("report", str(new), "--baseline", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert bad.returncode == 2 and "unknown source" in bad.stderr
