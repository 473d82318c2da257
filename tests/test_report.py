"""`resnorm report` on real runs: artifacts, statuses, bad inputs, findings, sources."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from resnorm.outputs import SUMMARY

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
VARIANTS = ("pre_ln", "post_ln", "no_norm")
SEEDS = (0, 1, 2)


def resnorm(*args: str, cwd: Path, env: dict | None = None, timeout: int = 900):
    return subprocess.run(
        [sys.executable, "-m", "resnorm.cli", *args],
        cwd=cwd,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_sweep(tmp_path_factory) -> Path:
    """Real runs: 3 variants x 3 seeds at depth 4, tiny budget (a minute or two). Built once
    per test session, in a fixed folder of the session's temp dir, for every report test file."""
    root = tmp_path_factory.getbasetemp() / "report_runs"
    if len(list((root / "sweep").rglob(SUMMARY))) == len(VARIANTS) * len(SEEDS):
        return root / "sweep"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    out = resnorm(
        "train",
        "-m",
        f"variant={','.join(VARIANTS)}",
        "seed=0,1,2",
        "model.depth=4",
        "model.dim=32",
        "trainer.max_steps=20",
        "task.val_every=10",
        f"hydra.sweep.dir={root / 'sweep'}",
        cwd=root,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(list((root / "sweep").rglob(SUMMARY))) == len(VARIANTS) * len(SEEDS)
    return root / "sweep"


@pytest.fixture(scope="session")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory)


def copy_sweep(sweep: Path, dest: Path, keep=lambda run: True) -> Path:
    dest.mkdir(parents=True)
    for run in sorted(p.parent for p in sweep.rglob(SUMMARY)):
        if keep(run):
            shutil.copytree(run, dest / run.name)
    return dest


def edit_summary(run_dir: Path, **changes) -> None:
    path = run_dir / SUMMARY
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
def test_report_writes_html_md_figures_and_runs_csv(sweep, tmp_path):
    out = tmp_path / "rep"
    t0 = time.perf_counter()
    res = resnorm("report", str(sweep), "--out", str(out), "--title", "t", cwd=tmp_path)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr
    assert f"wrote {out / 'index.html'}" in res.stdout
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 9 and set(runs["status"]) == {"completed"}
    assert set(runs["arch"]) == set(VARIANTS) and sorted(set(runs["seed"])) == list(SEEDS)
    pngs, svgs = sorted(out.glob("*.png")), sorted(out.glob("*.svg"))
    assert len(pngs) >= 4 and [p.stem for p in pngs] == [s.stem for s in svgs]
    for svg in svgs:
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    md = (out / "report.md").read_text()
    assert "## Findings" in md and "## Methods" in md
    # every summary-table cell has 3 seeds and a CI
    for variant in VARIANTS:
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| image_digits | {variant} | 4"))
        assert re.search(r"\| 0\.\d+ \[-?0\.\d+, \d\.\d+\] \| 3 \| 3 \|", row), row
    for png in pngs:
        assert "![" in md and f"({png.name})" in md
    print(f"report of 9 runs built in {elapsed:.1f}s (wall, subprocess incl. startup)")


@pytest.mark.slow
def test_html_is_self_contained(sweep, tmp_path):
    out = tmp_path / "rep"
    assert resnorm("report", str(sweep), "--out", str(out), cwd=tmp_path).returncode == 0
    html = (out / "index.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=[\"']?(https?:)?//", html)
    assert "<script src" not in html and "@import" not in html
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(srcs) == len(list(out.glob("*.png")))
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_never_imports_torch_or_lightning(sweep, tmp_path):
    code = (
        "import sys; from resnorm.cli import main\n"
        f"rc = main(['report', {str(sweep)!r}, '--out', {str(tmp_path / 'rep')!r}])\n"
        "bad = [m for m in ('torch', 'pytorch_lightning', 'lightning') if m in sys.modules]\n"
        "assert rc == 0 and not bad, (rc, bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert out.returncode == 0, out.stderr[-2000:]


def test_report_help_starts_without_torch():
    code = (
        "import sys\nfrom resnorm.cli import main\n"
        "try:\n    main(['report', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert out.returncode == 0, out.stderr
    assert "--wandb-workspace" in out.stdout
    assert time.perf_counter() - t0 < 30  # sanity bound only; typical well under a second


@pytest.mark.slow
def test_findings_on_real_runs(sweep):
    from resnorm.report.claims.catalog import all_findings
    from resnorm.report.sources.run_dirs import load_dirs

    found = {f.id: f for f in all_findings(load_dirs([str(sweep)]).runs)}
    # (j) exact parameter count: 2*dim per LayerNorm, 2*depth (+1 final for pre) norms
    j = found["j"]
    assert j.verdict == "supported" and j.effect == 0 and j.n == 6
    assert any("pre_ln" in d and "[576]" in d for d in j.details)  # 2*32*(2*4+1)
    assert any("post_ln" in d and "[512]" in d for d in j.details)  # 2*32*(2*4)
    # (a) has its runs: tested (Holm-adjusted p-values) with a paired CI over 3 seeds
    a = found["a"]
    assert a.n == 3 and a.ci is not None and a.parts[0].testable
    assert a.parts[0].candidate() in {"better", "worse", "equivalent"}  # one decision
    assert 0 < a.p_holm <= 1 and a.verdict != "not testable"
    # (i) and (g) lack their runs: inconclusive, naming exactly what is missing
    i = found["i"]
    assert i.verdict == "inconclusive"
    assert any("no_residual depth=8" in m and "no runs" in m for m in i.missing)
    assert found["g"].verdict == "inconclusive" and any("dyt_pre" in m for m in found["g"].missing)


@pytest.mark.slow
def test_one_seed_cells_show_no_ci_and_support_nothing(sweep, tmp_path):
    only0 = copy_sweep(sweep, tmp_path / "s0", keep=lambda run: run.name.endswith("_s0"))
    out = tmp_path / "rep"
    res = resnorm("report", str(only0), "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    md = (out / "report.md").read_text()
    assert md.count("(no CI)") >= 3
    j = next(ln for ln in md.splitlines() if ln.startswith("| (j)") and "| image_digits |" in ln)
    assert "| inconclusive |" in j
    matrix = next(ln for ln in md.splitlines() if ln.startswith("| (j)"))  # the verdict matrix
    assert md.index("## Verdicts") < md.index("## Summary") and "inconclusive ·" in matrix
    assert "seeds [0]" in md


@pytest.mark.slow
def test_running_and_failed_runs_are_listed_not_aggregated(sweep, tmp_path):
    copy = copy_sweep(sweep, tmp_path / "s")
    runs = sorted(p.parent for p in copy.rglob(SUMMARY) if "post_ln" in p.parent.name)
    edit_summary(runs[0], status="running", metrics={})
    edit_summary(runs[1], status="failed", error="RuntimeError: boom")
    out = tmp_path / "rep"
    res = resnorm("report", str(copy), "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    runs_csv = pd.read_csv(out / "runs.csv")
    assert len(runs_csv) == 9 and (runs_csv["status"] == "running").sum() == 1
    md = (out / "report.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| image_digits | post_ln | 4"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-1] == "2" and cells[5] == "1"  # 2 not aggregated, mean over 1 run
    assert "(no CI)" in row
    assert "## Runs not aggregated" in md and "RuntimeError: boom" in md


@pytest.mark.slow
def test_corrupt_summary_is_named_skipped_and_exits_1(sweep, tmp_path):
    copy = copy_sweep(sweep, tmp_path / "s")
    bad = sorted(copy.rglob(SUMMARY))[0]
    bad.write_text('{"schema": 1, "status": "compl')
    out = tmp_path / "rep"
    res = resnorm("report", str(copy), "--out", str(out), cwd=tmp_path)
    assert res.returncode == 1
    assert str(bad) in one_line(res.stderr) and "not valid JSON" in res.stderr
    assert len(pd.read_csv(out / "runs.csv")) == 8
    assert str(bad) in (out / "report.md").read_text()


@pytest.mark.slow
def test_newer_schema_stops_the_report(sweep, tmp_path):
    copy = copy_sweep(sweep, tmp_path / "s")
    run = sorted(p.parent for p in copy.rglob(SUMMARY))[0]
    edit_summary(run, schema=99)
    res = resnorm("report", str(copy), "--out", str(tmp_path / "rep"), cwd=tmp_path)
    assert res.returncode == 2
    line = one_line(res.stderr)
    assert str(run / SUMMARY) in line and "newer" in line
    assert not (tmp_path / "rep" / "index.html").exists()


@pytest.mark.parametrize(
    "source,fragment",
    [
        ("no/such/dir", "unknown source"),
        ("EMPTY", "no runs found"),
        ("wandb:bad name!", "expected wandb:ENTITY/PROJECT"),
        ("sqlite:///no/such.db", "does not exist"),
    ],
)
def test_bad_sources_are_one_clear_line(tmp_path, source, fragment):
    if source == "EMPTY":
        (tmp_path / "empty").mkdir()
        source = str(tmp_path / "empty")
    res = resnorm("report", source, "--out", str(tmp_path / "rep"), cwd=tmp_path)
    assert res.returncode == 2
    assert fragment in one_line(res.stderr)


def test_wandb_project_offline_fails_fast_with_one_line(tmp_path):
    t0 = time.perf_counter()
    res = resnorm("report", "wandb:someone/resnorm", cwd=tmp_path)
    assert res.returncode == 2 and "WANDB_MODE=offline" in one_line(res.stderr)
    # not offline, but the API host does not answer: still one line, within seconds
    env = {**ENV, "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"}
    env.pop("WANDB_MODE")
    res = resnorm("report", "wandb:someone/resnorm", cwd=tmp_path, env=env)
    assert res.returncode == 2 and "cannot reach http://127.0.0.1:9" in one_line(res.stderr)
    assert time.perf_counter() - t0 < 60
