"""The trainability frontier on synthetic run tables whose answer is known by construction."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from resnorm.paths import conf_dir
from resnorm.report.analysis import frontier
from resnorm.report.analysis.frontier_bar import Bar, configured_bars, limits
from resnorm.report.figures.base import colors
from resnorm.report.figures.frontier import _depth_axis, frontier_figure, frontier_figures

GRID = (1e-4, 1e-3, 1e-2, 1e-1)
CHANCE, GOOD, BAD = 0.1, 0.9, 0.3  # reference 0.9 -> bar 0.1 + 0.5 * 0.8 = 0.5
BARS = {"digits": Bar(reference="A", reference_score=0.9, success_share=0.5, pilot="test")}


def table(df: pd.DataFrame, bars=BARS) -> pd.DataFrame:
    return frontier.frontier_table(df, bars)


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
    t = table(known_frame())
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
    ps = frontier.per_seed(known_frame(), BARS)
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
    t = table(pd.DataFrame(rows)).set_index("depth")
    assert t.loc[2.0, "max_lr_median"] == 1e-3  # sorted 1e-4, 1e-3, 1e-2, 1e-1
    assert (t.loc[2.0, "max_lr_low"], t.loc[2.0, "max_lr_high"]) == (1e-4, 1e-1)
    assert math.isnan(t.loc[4.0, "max_lr_median"]) and t.loc[4.0, "none_seeds"] == 1


def test_bpc_success_is_measured_down_from_chance():
    # chance 6 bpc, reference 2 bpc: bar 4; 3.9 passes, 4.1 does not
    def lm(lr, seed, bpc):
        return run("A", 2, lr, seed, bpc, task="charlm", metric="test/bpc", chance=6.0)

    df = pd.DataFrame([lm(1e-4, 0, 2.0), lm(1e-3, 0, 3.9), lm(1e-2, 0, 4.1), lm(1e-1, 0, 2.0)])
    half = {"charlm": Bar(reference_score=2.0, success_share=0.5)}
    quarter = {"charlm": Bar(reference_score=2.0, success_share=0.25)}
    assert frontier.thresholds(df, half) == {"charlm": pytest.approx(4.0)}
    assert frontier.per_seed(df, half)["max_lr"].tolist() == [1e-3]
    assert frontier.thresholds(df, quarter) == {"charlm": pytest.approx(5.0)}
    assert frontier.per_seed(df, quarter)["max_lr"].tolist() == [1e-1]


def test_a_task_where_the_reference_does_not_beat_chance_has_no_successes():
    df = pd.DataFrame(grid_runs("A", 2, 0, lambda lr: (GOOD, "completed")))
    at_chance = {"digits": Bar(reference_score=CHANCE)}
    assert math.isnan(frontier.thresholds(df, at_chance)["digits"])
    assert not frontier.successes(df, at_chance).any()
    assert table(df, at_chance)["none_seeds"].tolist() == [1]


def test_frontier_rows_formats_none_and_the_top_of_the_grid():
    head, rows = frontier.frontier_rows(table(known_frame()))
    assert head[:5] == ["task", "variant", "depth", "max stable LR (median)", "range over seeds"]
    by_cell = {(r[1], r[2]): r for r in rows}
    assert by_cell[("A", "8")][3:6] == ["0.001", "0.0001 – 0.001", "3"]
    assert by_cell[("C", "2")][3:7] == ["≥0.1", "≥0.1", "3", "0"]
    assert by_cell[("C", "8")][3:5] == ["none", "none"]
    assert by_cell[("B", "2")][7] == "0.0001, 0.001, 0.01, 0.1"
    assert by_cell[("B", "2")][8] == "0.5 (fixed in advance)"
    assert frontier.frontier_rows(table(pd.DataFrame())) == ([], [])


def test_varying_settings_become_columns():
    df = known_frame()
    df = pd.concat([df.assign(warmup_steps=0.0), df.assign(warmup_steps=100.0)])
    t = table(df)
    assert "warmup_steps" in t and len(t) == 2 * len(EXPECTED)
    head, rows = frontier.frontier_rows(t)
    assert head[3] == "warmup_steps" and {r[3] for r in rows} == {"0", "100"}


def test_figure_is_written_with_data_and_none_without(tmp_path):
    df = known_frame()
    figs = frontier_figures(df, tmp_path, colors(df["arch"]), BARS)
    assert [f.name for f in figs] == ["frontier_digits"]
    assert figs[0].png.stat().st_size > 0 and figs[0].svg.exists()
    assert "50%" in figs[0].caption and figs[0].section == "frontier"
    assert "fixed in advance" in figs[0].caption and "NOT" not in figs[0].caption
    too_short = df[df["arch"] == "D"]  # two LRs only
    assert frontier_figures(too_short, tmp_path / "none", {}, BARS) == []
    empty = table(too_short)
    assert frontier_figure(empty, "digits", tmp_path, {}) is None


@pytest.mark.parametrize(
    "depths,log", [([2, 6, 12, 24, 48], True), ([2, 16], True), ([2, 4, 8], False)]
)
def test_depth_axis_goes_log2_from_a_factor_of_eight(depths, log):
    ax = Figure().subplots()
    _depth_axis(ax, [float(d) for d in depths])
    assert (ax.get_xscale() == "log") is log


def test_the_bar_is_read_from_the_study_config(tmp_path):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "frontier.yaml").write_text(
        "study:\n  frontier_bars:\n    digits:\n      reference: A\n      reference_score: 0.9\n"
        "      success_share: 0.5\n      pilot: resnorm train -m ...\n"
    )
    bars = configured_bars(["digits", "other"], tmp_path)
    assert bars["digits"] == Bar("A", 0.9, 0.5, "resnorm train -m ...")
    assert bars["other"] == Bar() and not bars["other"].fixed  # no config: not fixed
    same = ["bar_text"]  # which names the pilot
    assert (
        table(known_frame(), bars)
        .drop(columns=same)
        .equals(table(known_frame()).drop(columns=same))
    )
    lim = limits(known_frame(), bars)["digits"]
    assert lim.score == pytest.approx(0.5) and "fixed in advance" in lim.text()


def test_the_shipped_study_config_fixes_the_image_digits_bar_and_says_how():
    bar = configured_bars(["image_digits"])["image_digits"]
    assert bar.reference == "pre_ln" and 0 < bar.success_share < 1
    assert bar.fixed and "resnorm train" in bar.pilot


def test_without_a_fixed_score_the_bar_is_the_reports_reference_cell_and_says_so():
    df = known_frame().replace({"arch": {"A": "pre_ln"}})
    lim = limits(df, {"digits": Bar()})["digits"]
    assert lim.reference_score == pytest.approx(GOOD) and lim.score == pytest.approx(0.5)
    assert "NOT fixed in advance" in lim.text() and "pre_ln" in lim.text()
    assert set(table(df, {"digits": Bar()})["bar_kind"]) == {"report reference"}


def test_without_reference_runs_the_last_resort_says_it_moves():
    lim = limits(known_frame(), {"digits": Bar()})["digits"]  # no pre_ln runs
    assert lim.kind == "report best cell" and lim.score == pytest.approx(0.5)
    assert "moves when a better variant is added" in lim.text()
    _, rows = frontier.frontier_rows(table(known_frame(), {"digits": Bar()}))
    assert all("best cell" in r[8] for r in rows)


def _with_better_variant(df: pd.DataFrame) -> pd.DataFrame:
    """E beats every cell of ``df`` at every LR and depth."""
    rows = [run("E", d, lr, s, value=1.0) for d in (2, 8) for lr in GRID for s in (0, 1, 2)]
    return pd.concat([df, pd.DataFrame(rows)], ignore_index=True)


@pytest.mark.parametrize("bar", [BARS["digits"], Bar(reference="A")], ids=["fixed", "report"])
def test_a_better_variant_moves_no_other_frontier(bar):
    # F closes 0.52 of 0.1 -> 1: above the bar 0.5, below 0.55, where "half the gap to the
    # best cell of the report" would move once E (1.0) is added
    f = [run("F", 2, lr, s, value=0.52 if lr < 1e-1 else BAD) for lr in GRID for s in (0, 1, 2)]
    df = pd.concat([known_frame(), pd.DataFrame(f)], ignore_index=True)
    bars = {"digits": bar}
    before = table(df, bars)
    after = table(_with_better_variant(df), bars)
    assert set(after["arch"]) - set(before["arch"]) == {"E"}
    kept = after[after["arch"] != "E"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before)
    assert before.set_index("arch").loc["F", "max_lr_median"] == 1e-2


HALF_DECADE = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def test_half_decade_steps_are_reported_as_run():
    rows = []
    for seed, top in enumerate((1e-3, 3e-3, 3e-4)):
        rows += [
            run("A", 8, lr, seed, *((GOOD, "completed") if lr <= top else (CHANCE, "diverged")))
            for lr in HALF_DECADE
        ]
    t = table(pd.DataFrame(rows))
    r = t.iloc[0]
    assert r["lr_grid"] == HALF_DECADE
    assert (r["max_lr_median"], r["max_lr_low"], r["max_lr_high"]) == (1e-3, 3e-4, 3e-3)
    _, text = frontier.frontier_rows(t)
    assert text[0][3:5] == ["0.001", "0.0003 – 0.003"]
    assert text[0][7] == "0.0001, 0.0003, 0.001, 0.003, 0.01"


def test_heads_are_two_frontier_cells_never_pooled():
    df = known_frame()
    df = pd.concat([df.assign(heads=1.0), df.assign(heads=4.0)], ignore_index=True)
    # at 4 heads A trains at depth 2 only up to 1e-3 (diverges above)
    four_a2 = (df["heads"] == 4.0) & (df["arch"] == "A") & (df["depth"] == 2.0)
    df.loc[four_a2 & (df["lr"] > 1e-3), ["status", "diverged", "value"]] = "diverged", True, CHANCE
    t = table(df)
    assert "heads" in t and len(t) == 2 * len(EXPECTED)
    a2 = t[(t["arch"] == "A") & (t["depth"] == 2.0)].set_index("heads")["max_lr_median"]
    assert a2.to_dict() == {1.0: 1e-2, 4.0: 1e-3}
    head, _ = frontier.frontier_rows(t)
    assert head[3] == "heads"


def test_the_study_preset_maps_the_variants_at_three_depths_on_a_half_decade_grid():
    path = Path(conf_dir()) / "study" / "frontier.yaml"
    params = yaml.safe_load(path.read_text())["hydra"]["sweeper"]["params"]
    axes = {k: str(v).split(",") for k, v in params.items()}
    named = {"pre_ln", "post_ln", "deepnorm", "no_norm", "rezero", "admin", "peri_ln", "qk_norm"}
    assert named <= set(axes["variant"])
    assert {2, 8, 32} <= {int(d) for d in axes["model.depth"]}
    lrs = sorted(float(x) for x in axes["optim.lr"])
    steps = [b / a for a, b in zip(lrs, lrs[1:], strict=False)]
    assert all(2.9 < s < 3.4 for s in steps), steps  # half a decade: 3 or 10/3
    runs = math.prod(len(v) for v in axes.values())
    assert f"= {runs} runs" in path.read_text()  # the stated count is the sweep's
