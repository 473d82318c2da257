"""Exports (`resnorm export` / `resnorm import`): a report from the export equals one from
the run directories, and a study seeded from an export runs exactly what it lacks."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from resnorm.outputs import SUMMARY
from resnorm.report.analysis import frontier
from resnorm.report.claims.catalog import all_findings
from resnorm.report.sources.classify import ReportError, classify
from resnorm.report.sources.collect import load_sources
from resnorm.report.sources.rows import OBJECT_COLUMNS
from resnorm.results.archive import ExportError, read_records
from resnorm.results.export import export_study
from resnorm.results.seed import seed_study
from test_report import SEEDS, VARIANTS, make_sweep, one_line, resnorm


@pytest.fixture(scope="session")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory)


def _flat(runs: pd.DataFrame) -> pd.DataFrame:
    # where a run lives (its directory, or FILE:PATH in an export) is all that may differ
    cols = [
        c for c in runs.columns if c not in (*OBJECT_COLUMNS, "run_dir", "source", "step_timer")
    ]
    return runs[cols].sort_values("run_key").reset_index(drop=True)


@pytest.mark.slow
def test_report_from_export_equals_report_from_dirs(sweep, tmp_path):
    out = tmp_path / "results" / "sweep.jsonl.gz"
    res = resnorm("export", str(sweep), "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"{len(VARIANTS) * len(SEEDS)} runs" in res.stdout
    from_dirs, _ = load_sources([classify(str(sweep))])
    from_file, _ = load_sources([classify(str(out))])
    a, b = from_dirs.runs, from_file.runs
    pd.testing.assert_frame_equal(_flat(a), _flat(b))
    # the per-step curves and probe records too, run by run
    a, b = a.sort_values("run_key"), b.sort_values("run_key")
    for col in ("curve", "val_curve", "train_log", "init_probe", "final_probe"):
        for x, y in zip(a[col], b[col], strict=True):
            if isinstance(x, pd.DataFrame):
                pd.testing.assert_frame_equal(x, y)
            else:
                assert x == y
    assert all(str(d).startswith(f"{out}:") for d in b["run_dir"])
    fa, fb = all_findings(a), all_findings(b)
    for x, y in zip(fa, fb, strict=True):
        assert (x.id, x.task, x.verdict, x.n, x.ci) == (y.id, y.task, y.verdict, y.n, y.ci)
        assert x.effect == y.effect or (math.isnan(x.effect) and math.isnan(y.effect))
    # the CLI reads it as a source, and its findings table says the same
    rep = [tmp_path / "from_dirs", tmp_path / "from_file"]
    for src, dest in zip((sweep, out), rep, strict=True):
        assert resnorm("report", str(src), "--out", str(dest), cwd=tmp_path).returncode == 0
    verdicts = [
        [ln for ln in (d / "report.md").read_text().splitlines() if ln.startswith("| (")]
        for d in rep
    ]
    assert verdicts[0] and verdicts[0] == verdicts[1]


def test_export_holds_results_not_checkpoints(sweep, tmp_path):
    run = next(p.parent for p in sorted(sweep.rglob(SUMMARY)))
    study = tmp_path / "study"
    shutil.copytree(run, study / run.name)
    (study / run.name / "checkpoints").mkdir(exist_ok=True)
    (study / run.name / "checkpoints" / "last.ckpt").write_bytes(b"x" * 1000)
    killed = study / "killed"
    killed.mkdir()
    (killed / SUMMARY).write_text(json.dumps({"status": "running", "schema": 1}))
    n, left_out = export_study(study, tmp_path / "one.jsonl.gz")
    assert n == 1 and left_out == ["killed (running)"]
    [record] = list(read_records(tmp_path / "one.jsonl.gz"))
    assert record.path == run.name
    assert set(record.files) >= {SUMMARY, "stability.json", "csv/metrics.csv"}
    assert not any("ckpt" in name for name in record.files)
    # the same runs give the same bytes (no timestamps): a re-export diffs clean
    export_study(study, tmp_path / "two.jsonl.gz")
    assert (tmp_path / "one.jsonl.gz").read_bytes() == (tmp_path / "two.jsonl.gz").read_bytes()


def test_bad_exports_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(ReportError, match="not a resnorm export"):
        load_sources([classify(str(bad))])
    escaping = tmp_path / "escape.jsonl.gz"
    with gzip.open(escaping, "wt") as f:
        f.write(json.dumps({"format": "resnorm-export", "version": 1}) + "\n")
        f.write(json.dumps({"path": "../../etc", "files": {SUMMARY: "{}"}}) + "\n")
    with pytest.raises(ExportError, match="leaves the study directory"):
        seed_study(escaping, tmp_path / "study")
    assert not (tmp_path / "study").exists()
    res = resnorm("export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.jsonl.gz"),
                  cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2 and "no such study directory" in one_line(res.stderr)
    res = resnorm("import", str(escaping), "--into", str(tmp_path / "s"), cwd=tmp_path)
    assert res.returncode == 2 and "leaves the study directory" in one_line(res.stderr)


@pytest.mark.slow
def test_seeded_study_runs_only_what_the_export_lacks(sweep, tmp_path):
    runs = [p.parent for p in sorted(sweep.rglob(SUMMARY))]
    part = tmp_path / "part"
    for run in runs[:6]:  # the export holds 6 of the 9 runs
        shutil.copytree(run, part / run.name)
    export_study(part, tmp_path / "part.jsonl.gz")
    study = tmp_path / "elsewhere" / "sweep"
    res = resnorm("import", str(tmp_path / "part.jsonl.gz"), "--into", str(study), cwd=tmp_path)
    assert res.returncode == 0 and "6 runs" in res.stdout, res.stderr
    seeded = {p.parent.name: p.read_bytes() for p in study.rglob(SUMMARY)}
    res = resnorm(
        "train", "-m", f"variant={','.join(VARIANTS)}", "seed=0,1,2", "model.depth=4",
        "model.dim=32", "trainer.max_steps=20", "task.val_every=10",
        f"hydra.sweep.dir={study}", cwd=tmp_path / "elsewhere",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    skipped = [ln for ln in res.stdout.splitlines() if ln.startswith("resnorm: skipped")]
    assert len(skipped) == 6, res.stdout[-3000:]
    assert all("completed before" in ln for ln in skipped)
    after = {p.parent.name: p.read_bytes() for p in study.rglob(SUMMARY)}
    assert len(after) == 9
    assert {k: after[k] for k in seeded} == seeded  # the seeded runs untouched
    new = sorted(set(after) - set(seeded))
    assert new == sorted(r.name for r in runs[6:])
    assert all(json.loads(after[k])["status"] == "completed" for k in new)
    # importing again keeps what is there
    res = resnorm("import", str(tmp_path / "part.jsonl.gz"), "--into", str(study), cwd=tmp_path)
    assert "0 runs" in res.stdout and "6 already there" in res.stdout


RESULTS = Path(__file__).resolve().parent.parent / "results"


def test_committed_exports_are_compact_and_readable():
    """results/ travels with the repository: under 30 MB, every file a readable export."""
    files = sorted(RESULTS.glob("*.jsonl.gz"))
    assert files, "results/ holds the findings study's exports"
    assert sum(p.stat().st_size for p in RESULTS.rglob("*") if p.is_file()) < 30e6
    for path in files:
        records = list(read_records(path))
        assert records and all(SUMMARY in r.files for r in records)


@pytest.mark.slow
def test_committed_findings_report_is_built_from_the_committed_exports(tmp_path):
    """reports/findings/ is what `resnorm report results/findings_*.jsonl.gz` writes today:
    anyone can regenerate it, and a rule change that moves a verdict shows here until it is
    rebuilt."""
    committed = RESULTS.parent / "reports" / "findings" / "report.md"
    out = tmp_path / "findings"
    res = resnorm("report", *map(str, sorted(RESULTS.glob("findings_*.jsonl.gz"))),
                  "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]

    def verdicts(path: Path) -> list[str]:
        return [ln for ln in path.read_text().splitlines() if ln.startswith("| (")]

    assert verdicts(out / "report.md") == verdicts(committed)


def test_committed_frontier_table_is_the_one_its_export_gives():
    """reports/frontier/'s table is what the frontier rule computes from
    results/frontier_*.jsonl.gz today (a rule change shows here until it is rebuilt)."""
    exports = sorted(RESULTS.glob("frontier_*.jsonl.gz"))
    assert exports
    runs = load_sources([classify(str(p)) for p in exports])[0].runs
    head, rows = frontier.frontier_rows(frontier.frontier_table(runs))
    committed = (RESULTS.parent / "reports" / "frontier" / "report.md").read_text().splitlines()
    lines = ["| " + " | ".join(r) + " |" for r in [head, *rows]]
    assert rows and all(line in committed for line in lines), lines
