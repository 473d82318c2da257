"""The budget check (report.claims.budget): has pre_ln's validation curve flattened by the
end of its step budget? Synthetic run rows, then run directories through the report's loader."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from resnorm.outputs import SUMMARY
from resnorm.report.claims import budget
from resnorm.report.claims.budget import FLATTENED, IMPROVING, NOT_CHECKABLE
from resnorm.report.render import content
from resnorm.report.sources.rows import frame
from resnorm.report.sources.run_dirs import load_dirs

STEPS = (49, 99, 149, 199)  # how a 200-step run validating every 50 steps logs its steps
FLAT = (0.50, 0.80, 0.898, 0.90)  # last quarter +0.002: well under 1 accuracy point
RISING = (0.50, 0.60, 0.70, 0.73)  # last quarter +0.03: still 3 points to gain
MODEL = {"residual": "on", "norm_position": "pre", "norm": "layernorm", "norm_eps": 1e-5,
         "activation": "gelu", "attn_scale": True, "qk_norm": False, "causal": False,
         "dropout": 0.0, "ffn_mult": 4, "layerscale_init": 0.1, "depth": 8, "dim": 64,
         "heads": 4}  # fmt: skip


def noisy(values, seed: int, scale: float = 0.002) -> list[float]:
    """The same curve with a small per-seed wobble, so seeds are not identical."""
    rng = np.random.default_rng(seed)
    return [float(v + rng.normal(0, scale)) for v in values]


def row(curve, seed: int, lr: float = 1e-3, metric: str = "test/acc", **kw) -> dict:
    steps = kw.pop("steps", STEPS)
    col = "val/bpc" if metric.endswith("bpc") else "val/acc"
    vals = list(curve)
    best = max(vals) if col == "val/acc" else min(vals)
    out = {
        "task": "t", "arch": "pre_ln", "depth": 8.0, "heads": 4.0, "dim": 64.0, "lr": lr,
        "warmup_steps": 50.0, "max_steps": 200.0, "seed": float(seed), "status": "completed",
        "usable": True, "diverged": False, "metric": metric, "chance": 0.1,
        "val_curve": pd.DataFrame({"step": steps[: len(vals)], col: vals}),
        f"m_val_best/{col.split('/')[1]}": best,
    }  # fmt: skip
    out.update(kw)
    return out


def rows_of(curve, seeds=range(8), **kw) -> list[dict]:
    return [row(noisy(curve, s), s, **kw) for s in seeds]


def only(df: pd.DataFrame) -> budget.BudgetRow:
    found = budget.budget_rows(df)
    assert len(found) == 1, found
    return found[0]


def test_quarter_gain_compares_the_last_validation_with_the_one_nearest_75_percent():
    curve = pd.DataFrame({"step": STEPS, "val/acc": RISING})
    gain, window = budget.quarter_gain(curve, 200.0, +1)
    assert gain == pytest.approx(0.03) and window == (149.0, 199.0)
    dense = pd.DataFrame({"step": range(0, 201, 10), "val/acc": np.linspace(0, 1, 21)})
    assert budget.quarter_gain(dense, 200.0, +1)[1] == (150.0, 200.0)
    # bits per char: lower is better, so a falling curve is improving
    bpc = pd.DataFrame({"step": STEPS, "val/bpc": (3.0, 2.5, 2.2, 2.1)})
    assert budget.quarter_gain(bpc, 200.0, -1)[0] == pytest.approx(0.1)
    assert math.isnan(budget.quarter_gain(curve.iloc[:2], 200.0, +1)[0])
    assert math.isnan(budget.quarter_gain(None, 200.0, +1)[0])


def test_a_curve_that_flattens_is_flattened():
    r = only(frame(rows_of(FLAT)))
    assert r.base.verdict == FLATTENED, r.base.text()
    assert r.base.seeds == 8 and r.base.window == (149.0, 199.0)
    assert r.base.est.high < budget.MIN_EFFECTS["test/acc"] == r.base.threshold
    assert r.base.est.mean == pytest.approx(0.002, abs=0.003)
    assert r.best is None  # one lr: no grid to pick a best lr from
    assert r.base.text().startswith("flattened: ")


def test_a_curve_still_rising_3_points_in_the_last_quarter_is_still_improving():
    r = only(frame(rows_of(RISING)))
    assert r.base.verdict == IMPROVING, r.base.text()
    assert r.base.est.mean == pytest.approx(0.03, abs=0.003)
    assert r.base.est.low > budget.MIN_EFFECTS["test/acc"]
    assert r.base.text().startswith("still improving: 0.029")
    assert "upper ≥ 0.01 (8 seeds; val steps 149→199)" in r.base.text()


def test_flattened_needs_the_whole_interval_below_the_minimum_effect():
    """A mean gain under the minimum effect with a wide interval is not 'flattened'."""
    gains = (0.0, 0.02, -0.006, 0.02)  # mean 0.0085, upper end well above 0.01
    rows = [row((0.5, 0.7, 0.8, 0.8 + g), s) for s, g in enumerate(gains)]
    r = only(frame(rows))
    assert r.base.est.mean < 0.01 < r.base.est.high
    assert r.base.verdict == IMPROVING


def test_bits_per_char_are_oriented_and_use_their_own_minimum_effect():
    down = [row(noisy((3.0, 2.4, 2.2, 2.1), s), s, metric="test/bpc") for s in range(4)]
    r = only(frame(down))
    assert r.base.verdict == IMPROVING and r.base.est.mean == pytest.approx(0.1, abs=0.005)
    assert r.base.threshold == budget.MIN_EFFECTS["test/bpc"]
    flat = [row(noisy((3.0, 2.4, 2.105, 2.1), s), s, metric="test/bpc") for s in range(4)]
    assert only(frame(flat)).base.verdict == FLATTENED


def test_too_few_seeds_or_validation_points_is_not_checkable():
    r = only(frame(rows_of(RISING, seeds=range(2))))
    assert r.base.verdict == NOT_CHECKABLE and "2 seed(s)" in r.base.reason
    short = only(frame([row(noisy(RISING[:2], s), s) for s in range(8)]))
    assert short.base.verdict == NOT_CHECKABLE and "0 seed(s)" in short.base.reason
    assert short.base.text().startswith("not checkable: ")


def test_diverged_runs_are_left_out_and_named():
    rows = rows_of(FLAT, seeds=range(2)) + [row(FLAT, 5, diverged=True, status="diverged")]
    r = only(frame(rows))
    assert r.base.verdict == NOT_CHECKABLE and "1 diverged left out" in r.base.reason


def test_only_the_base_cell_of_pre_ln_is_the_reference():
    others = (
        rows_of(RISING, arch="post_ln")
        + rows_of(RISING, depth=2.0)
        + rows_of(RISING, heads=1.0)
        + rows_of(RISING, warmup_steps=0.0)
        + [{**r, "usable": False, "status": "running"} for r in rows_of(RISING)]
    )
    assert budget.budget_rows(frame(others)) == []
    r = only(frame(others + rows_of(FLAT)))
    assert r.base.verdict == FLATTENED and r.base.seeds == 8


def test_another_budget_is_another_row():
    rows = rows_of(RISING) + rows_of(FLAT, max_steps=800.0)
    found = {r.budget: r.base.verdict for r in budget.budget_rows(frame(rows))}
    assert found == {200.0: IMPROVING, 800.0: FLATTENED}


def test_the_best_lr_of_a_grid_is_chosen_on_validation_and_checked_too():
    rows = (
        rows_of((0.3, 0.4, 0.5, 0.55), lr=1e-4)
        + rows_of(RISING, lr=1e-3)
        + rows_of(FLAT, lr=1e-2)  # best val_best (0.90)
        + [row(FLAT, s, lr=1e-1, diverged=True, status="diverged") for s in range(8)]
    )
    r = only(frame(rows))
    assert r.base.verdict == IMPROVING and r.best is not None
    assert r.best.lr == pytest.approx(1e-2) and r.best.verdict == FLATTENED
    # a diverged run scores chance for the choice, whatever its curve says
    assert budget.best_lr(frame(rows)[lambda d: d["lr"] > 5e-2], "test/acc") is None
    two = frame(rows_of(RISING, lr=1e-3) + rows_of(FLAT, lr=1e-2))
    assert only(two).best is None  # 2 rates are no grid


def test_the_report_table_states_both_checks():
    rows = rows_of(RISING) + rows_of(FLAT, lr=1e-2) + rows_of((0.3, 0.4, 0.5, 0.5), lr=1e-4)

    class Data:  # the table reads only the runs
        runs = frame(rows)

    head, body = content.budget_table(Data)  # type: ignore[arg-type]
    assert head[:4] == ["task", "width", "steps", "metric"] and len(head) == 6
    assert body[0][:4] == ["t", "64", "200", "test/acc"]
    assert body[0][4].startswith("still improving") and body[0][5].startswith("lr 0.01: flat")
    assert "upper end is below" in content.budget_note()

    class Empty:
        runs = frame(rows_of(RISING, arch="post_ln"))

    assert content.budget_table(Empty) == ([], [])  # type: ignore[arg-type]


# --- run directories through the report's loader ----------------------------------------


def write_run(root: Path, seed: int, lr: float, curve) -> None:
    """A pre_ln run directory in the outputs contract, written by hand."""
    run = root / f"pre_ln_lr{lr:g}_s{seed}"
    (run / "csv").mkdir(parents=True)
    summary = {
        "schema": 1, "run_key": f"pre_ln-{lr}-{seed}", "status": "completed",
        "task": "image_digits", "variant": "pre_ln", "variant_overrides": {"depth": 8},
        "seed": seed, "lr": lr, "warmup_steps": 50, "steps": 200, "wall_s": 1.0,
        "chance": 0.1, "model": MODEL, "stability": {},
        "metrics": {"test/acc": curve[-1], "test/loss": 1.0, "val_best/acc": max(curve)},
        "config": {"trainer": {"max_steps": 200}, "optim": {"lr": lr, "warmup_steps": 50}},
    }  # fmt: skip
    (run / SUMMARY).write_text(json.dumps(summary))
    lines = ["step,train/loss,val/acc"]
    for step, value in zip(STEPS, curve, strict=True):
        lines += [f"{step},{2.0 - step / 200},", f"{step},,{value}"]  # train and val rows
    (run / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_run_directories_give_the_same_checks(tmp_path):
    for s in range(4):
        write_run(tmp_path, s, 1e-3, noisy(RISING, s))
        write_run(tmp_path, s, 1e-2, noisy(FLAT, s))
        write_run(tmp_path, s, 1e-4, noisy((0.2, 0.3, 0.35, 0.37), s))
    runs = load_dirs([str(tmp_path)]).runs
    assert set(runs["arch"]) == {"pre_ln"} and len(runs) == 12
    r = only(runs)
    assert (r.task, r.budget, r.metric) == ("image_digits", 200.0, "test/acc")
    assert r.base.verdict == IMPROVING and r.base.seeds == 4
    assert r.base.window == (149.0, 199.0)
    assert r.best is not None and r.best.lr == pytest.approx(1e-2)
    assert r.best.verdict == FLATTENED
