"""The cell key: a run table with pre_ln at 1 and at 4 heads (all else equal) gives two
cells in the summary table, the LR-sensitivity grids and the frontier, never one pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from resnorm.report.analysis import cells, frontier, lr_sensitivity, table
from resnorm.report.analysis.frontier_bar import Bar
from resnorm.report.claims.lr_selection import complete_grids
from resnorm.report.claims.rules import Context

LRS = (1e-4, 3e-4, 1e-3, 3e-3)
SEEDS = (0, 1, 2)


def run(heads: float, lr: float, seed: int, value: float, loss: float) -> dict:
    return {
        "task": "digits", "arch": "pre_ln", "depth": 8.0, "dim": 64.0, "heads": heads,
        "lr": lr, "warmup_steps": 50.0, "schedule": "cosine", "max_steps": 600.0,
        "seed": float(seed), "status": "completed", "usable": True, "diverged": False,
        "value": value, "metric": "test/acc", "chance": 0.1, "test_loss": loss,
        "init_loss": 2.3, "spike_count": 0.0, "m_val_best/acc": value,
    }  # fmt: skip


def runs() -> pd.DataFrame:
    """1 head: best at 1e-4, loss rising with lr; 4 heads: best at 1e-3, flat losses."""
    rows = []
    for seed in SEEDS:
        for i, lr in enumerate(LRS):
            rows.append(run(1.0, lr, seed, 0.9 - 0.25 * i, 0.3 + 0.5 * i))
            rows.append(run(4.0, lr, seed, 0.8 + (0.1 if lr == 1e-3 else 0.0), 0.4))
    return pd.DataFrame(rows)


def test_the_key_is_every_column_but_the_seed():
    df = runs()
    assert cells.cell_keys(df) == [
        "task", "arch", "depth", "dim", "heads", "lr", "warmup_steps", "schedule", "max_steps"
    ]  # fmt: skip
    assert "seed" not in cells.cell_keys(df) and "lr" not in cells.cell_keys(df, without=["lr"])
    assert cells.shown_keys(df) == ["task", "arch", "depth", "heads", "lr"]


def test_a_missing_value_is_a_value_of_its_own():
    df = pd.DataFrame({"task": ["t"] * 2, "arch": ["a"] * 2, "depth": [2.0] * 2,
                       "heads": [4.0, np.nan]})  # fmt: skip
    assert cells.shown_keys(df) == ["task", "arch", "depth", "heads"]


def test_summary_table_has_one_row_per_heads():
    t = table.summary_table(runs())
    assert len(t) == 2 * len(LRS) and set(t["heads"]) == {1.0, 4.0}
    assert (t["n"] == len(SEEDS)).all() and (t["seeds"] == len(SEEDS)).all()
    one = t[(t["heads"] == 1.0) & (t["lr"] == 1e-4)]["mean"]
    assert one.tolist() == [pytest.approx(0.9)]


def test_lr_grids_are_per_heads_and_never_pick_a_row():
    ps = lr_sensitivity.per_seed(runs())
    assert len(ps) == 2 * len(SEEDS)
    by_heads = ps.groupby("heads")["lr_sensitivity"].mean()
    assert by_heads[4.0] == pytest.approx(0.0)  # flat losses
    assert by_heads[1.0] == pytest.approx(np.mean([0.0, 0.5, 1.0, 1.5]))
    t = lr_sensitivity.table(runs())
    assert len(t) == 2 and set(t["heads"]) == {1.0, 4.0}


def test_repeated_runs_at_one_lr_are_averaged_whatever_their_order():
    df = runs()
    one = df[df["heads"] == 1.0]
    again = one[one["lr"] == 1e-4].assign(test_loss=0.5)  # a relaunch that ended worse
    ps = [
        lr_sensitivity.per_seed(pd.concat(parts, ignore_index=True))
        for parts in ([one, again], [again, one])
    ]
    pd.testing.assert_frame_equal(ps[0], ps[1])
    # lr 1e-4 now 0.4 (mean of 0.3 and 0.5); the best is still 0.4: mean of 0, 0.4, 0.9, 1.4
    assert ps[0]["lr_sensitivity"].tolist() == [pytest.approx(0.675)] * len(SEEDS)


def test_frontier_cells_are_per_heads():
    df = runs()
    bars = {"digits": Bar(reference_score=0.9, success_share=0.5)}  # bar 0.5
    t = frontier.frontier_table(df, bars).set_index("heads")
    assert len(t) == 2
    assert t.loc[1.0, "max_lr_median"] == 3e-4  # 0.9, 0.65 pass; 0.4 at 1e-3 fails
    assert t.loc[4.0, "max_lr_median"] == 3e-3


def test_lr_selection_chooses_per_heads():
    df = runs()
    ctx = Context("digits", df, df)
    grid = tuple(float(x) for x in LRS)
    choices = complete_grids(ctx, "pre_ln", grid)
    assert {c.setting[c.keys.index("heads")]: c.lr for c in choices.values()} == {
        1.0: 1e-4,
        4.0: 1e-3,
    }


def test_a_missing_setting_neither_pools_nor_breaks_the_reference_bar():
    df = runs().assign(schedule=None)  # e.g. summaries that do not record the schedule
    t = frontier.frontier_table(df, {"digits": Bar()})  # bar from this report's pre_ln
    assert len(t) == 2 and set(t["bar_kind"]) == {"report reference"}
    assert t["bar"].tolist() == [pytest.approx(0.1 + 0.5 * 0.8)] * 2  # best cell 0.9
