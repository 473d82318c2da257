"""The trainability frontier on synthetic run tables whose answer is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from resnorm.report.analysis import frontier
from resnorm.report.figures.base import colors
from resnorm.report.figures.frontier import _depth_axis, frontier_figure, frontier_figures

GRID = (1e-4, 1e-3, 1e-2, 1e-1)
CHANCE, GOOD, BAD = 0.1, 0.9, 0.3  # best cell 0.9 -> threshold 0.1 + 0.5 * 0.8 = 0.5


def run(arch, depth, lr, seed, value=GOOD, status="completed", task="digits", metric="test/acc",
        chance=CHANCE) -> dict:  # fmt: skip
    diverged = status == "diverged"
    return {
        "task": task, "arch": arch, "depth": float(depth), "lr": lr, "seed": float(seed),
        "status": status, "usable": status in ("completed", "diverged"), "diverged": diverged,
        "value": chance if diverged else value, "metric": metric, "chance": chance,
    }  # fmt: skip


def grid_runs(arch, depth, seed, outcome) -> list[dict]:
    """One seed over GRID; ``outcome(lr)`` gives (value, status) per LR."""
    return [run(arch, depth, lr, seed, *outcome(lr)) for lr in GRID]


def known_frame() -> pd.DataFrame:
    rows = []
    for seed in (0, 1, 2):
        # A: trains up to 1e-2 at depth 2 (diverges at 1e-1), up to 1e-3 at depth 8 (1e-2
        # finishes but learns too little); seed 2 at depth 8 fails at 1e-3 but trains at 1e-2
        rows += grid_runs("A", 2, seed, lambda lr: (GOOD, "diverged" if lr > 1e-2 else "completed"))
        mid_fail = seed == 2
        rows += grid_runs(
            "A", 8, seed,
            lambda lr, m=mid_fail: (
                (0.45 if lr == 1e-3 else 0.8) if m and lr in (1e-3, 1e-2)
                else (GOOD if lr <= 1e-3 else BAD), "diverged" if lr > 1e-2 else "completed"
            ),
        )  # fmt: skip
        # B diverges above 1e-3 everywhere; at depth 8 seed 1 the 1e-3 run crashed (failed)
        for depth in (2, 8):
            crash = depth == 8 and seed == 1
            rows += grid_runs(
                "B", depth, seed,
                lambda lr, c=crash: (GOOD, "failed" if c and lr == 1e-3
                                     else "diverged" if lr > 1e-3 else "completed"),
            )  # fmt: skip
        # C: nothing trains at depth 8; at depth 2 seed 0 fails at the smallest LR only (too
        # slow for the budget: it does not end the frontier)
        rows += grid_runs("C", 8, seed, lambda lr: (CHANCE, "completed"))
        rows += grid_runs("C", 2, seed, lambda lr, s=seed: (BAD if s == 0 and lr == 1e-4
                                                               else GOOD, "completed"))  # fmt: skip
        # D has only two LRs: no frontier
        rows += [run("D", 2, lr, seed) for lr in (1e-3, 1e-2)]
    return pd.DataFrame(rows)


NONE = math.nan
EXPECTED = [  # arch, depth, median, low, high, none seeds
    ("A", 2, 1e-2, 1e-2, 1e-2, 0),
    ("A", 8, 1e-3, 1e-4, 1e-3, 0),
    ("B", 2, 1e-3, 1e-3, 1e-3, 0),
    ("B", 8, 1e-3, 1e-4, 1e-3, 0),
    ("C", 2, 1e-1, 1e-1, 1e-1, 0),
    ("C", 8, NONE, NONE, NONE, 3),
]


def test_frontier_table_matches_the_known_answer():
    t = frontier.frontier_table(known_frame())
    assert list(t.columns) == frontier.COLUMNS
    got = [
        (r.arch, r.depth, r.max_lr_median, r.max_lr_low, r.max_lr_high, r.none_seeds)
        for r in t.itertuples()
    ]
    assert len(got) == len(EXPECTED)
    for g, want in zip(got, EXPECTED, strict=True):
        assert g[:2] == want[:2] and g[5] == want[5]
        np.testing.assert_array_equal(np.array(g[2:5]), np.array(want[2:5]), err_msg=str(g))
    assert set(t["seeds"]) == {3} and set(t["task"]) == {"digits"}
    assert all(grid == GRID for grid in t["lr_grid"])


def test_per_seed_rule_stops_at_the_first_failure():
    ps = frontier.per_seed(known_frame())
    a8 = ps[(ps["arch"] == "A") & (ps["depth"] == 8)].set_index("seed")["max_lr"]
    assert a8.to_dict() == {0.0: 1e-3, 1.0: 1e-3, 2.0: 1e-4}  # seed 2 trains at 1e-2 again
    assert frontier.max_stable_lr([1e-2, 1e-4, 1e-3], [True, True, False]) == 1e-4  # unsorted
    # failures below the first success are LRs too small for the budget, not instability
    assert frontier.max_stable_lr([1e-4, 1e-3, 1e-2], [False, True, True]) == 1e-2
    assert frontier.max_stable_lr([1e-4, 1e-3, 1e-2, 1e-1], [False, True, False, True]) == 1e-3
    assert math.isnan(frontier.max_stable_lr([1e-4, 1e-3, 1e-2], [False, False, False]))
    assert frontier.max_stable_lr([1e-4, 1e-3, 1e-2], [True, True, True]) == 1e-2


def test_even_seed_count_takes_the_lower_middle_and_none_ranks_lowest():
    rows = []
    for seed, top in enumerate([1e-2, 1e-3, 1e-1, 1e-4]):
        rows += grid_runs("A", 2, seed, lambda lr, t=top: (GOOD if lr <= t else BAD, "completed"))
    rows += grid_runs("A", 4, 0, lambda lr: (BAD, "completed"))
    rows += grid_runs("A", 4, 1, lambda lr: (GOOD, "completed"))
    t = frontier.frontier_table(pd.DataFrame(rows)).set_index("depth")
    assert t.loc[2.0, "max_lr_median"] == 1e-3  # sorted 1e-4, 1e-3, 1e-2, 1e-1
    assert (t.loc[2.0, "max_lr_low"], t.loc[2.0, "max_lr_high"]) == (1e-4, 1e-1)
    assert math.isnan(t.loc[4.0, "max_lr_median"]) and t.loc[4.0, "none_seeds"] == 1


def test_bpc_success_is_measured_down_from_chance():
    # chance 6 bpc, best cell 2 bpc: threshold 4; 3.9 passes, 4.1 does not
    def lm(lr, seed, bpc):
        return run("A", 2, lr, seed, bpc, task="charlm", metric="test/bpc", chance=6.0)

    df = pd.DataFrame([lm(1e-4, 0, 2.0), lm(1e-3, 0, 3.9), lm(1e-2, 0, 4.1), lm(1e-1, 0, 2.0)])
    assert frontier.thresholds(df) == {"charlm": pytest.approx(4.0)}
    assert frontier.per_seed(df)["max_lr"].tolist() == [1e-3]
    assert frontier.thresholds(df, fraction=0.25) == {"charlm": pytest.approx(5.0)}
    assert frontier.per_seed(df, fraction=0.25)["max_lr"].tolist() == [1e-1]


def test_a_task_where_nothing_beats_chance_has_no_successes():
    df = pd.DataFrame(grid_runs("A", 2, 0, lambda lr: (CHANCE, "completed")))
    assert math.isnan(frontier.thresholds(df)["digits"])
    assert not frontier.successes(df).any()
    assert frontier.frontier_table(df)["none_seeds"].tolist() == [1]


def test_frontier_rows_formats_none_and_the_top_of_the_grid():
    head, rows = frontier.frontier_rows(frontier.frontier_table(known_frame()))
    assert head[:5] == ["task", "variant", "depth", "max stable LR (median)", "range over seeds"]
    by_cell = {(r[1], r[2]): r for r in rows}
    assert by_cell[("A", "8")][3:6] == ["0.001", "0.0001 – 0.001", "3"]
    assert by_cell[("C", "2")][3:7] == ["≥0.1", "≥0.1", "3", "0"]
    assert by_cell[("C", "8")][3:5] == ["none", "none"]
    assert by_cell[("B", "2")][7] == "0.0001, 0.001, 0.01, 0.1"
    assert frontier.frontier_rows(frontier.frontier_table(pd.DataFrame())) == ([], [])


def test_varying_settings_become_columns():
    df = known_frame()
    df = pd.concat([df.assign(warmup_steps=0.0), df.assign(warmup_steps=100.0)])
    t = frontier.frontier_table(df)
    assert "warmup_steps" in t and len(t) == 2 * len(EXPECTED)
    head, rows = frontier.frontier_rows(t)
    assert head[3] == "warmup_steps" and {r[3] for r in rows} == {"0", "100"}


def test_figure_is_written_with_data_and_none_without(tmp_path):
    df = known_frame()
    figs = frontier_figures(df, tmp_path, colors(df["arch"]))
    assert [f.name for f in figs] == ["frontier_digits"]
    assert figs[0].png.stat().st_size > 0 and figs[0].svg.exists()
    assert "50%" in figs[0].caption and figs[0].section == "frontier"
    too_short = df[df["arch"] == "D"]  # two LRs only
    assert frontier_figures(too_short, tmp_path / "none", {}) == []
    empty = frontier.frontier_table(too_short)
    assert frontier_figure(empty, "digits", tmp_path, {}) is None


@pytest.mark.parametrize(
    "depths,log", [([2, 6, 12, 24, 48], True), ([2, 16], True), ([2, 4, 8], False)]
)
def test_depth_axis_goes_log2_from_a_factor_of_eight(depths, log):
    ax = Figure().subplots()
    _depth_axis(ax, [float(d) for d in depths])
    assert (ax.get_xscale() == "log") is log
