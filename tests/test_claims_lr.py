"""Claims (f), (n) and the LR-sensitivity table: one clamp L_0 per task, common to every
variant; two variants compared only on the LRs both have (>= 3, else no estimate); grids of
different head counts never pooled, in the claims and in the table."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from resnorm.report.analysis import lr_sensitivity
from resnorm.report.claims.literature_lr import CLAIM_F, CLAIM_N, WORTSMAN_GRID
from resnorm.report.claims.needs import LR_GRID
from resnorm.report.claims.rules import Context, finish
from resnorm.report.claims.verdicts import BETTER, EQUIVALENT, NOT_SUPPORTED, SUPPORTED, resolve
from resnorm.report.render import content

SEEDS = 8
DIVERGED = math.inf


def grid(arch: str, losses: dict[float, float], init: float = 2.3, heads: int = 4, seed: int = 0):
    """One variant's LR grid over SEEDS seeds: final test loss ``losses[lr]`` plus a little
    noise of its own (so that paired differences are replicates, not copies); inf: diverged."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(SEEDS):
        for lr, loss in losses.items():
            diverged = not math.isfinite(loss)
            rows.append(
                {
                    "task": "t",
                    "arch": arch,
                    "depth": 8,
                    "dim": 64,
                    "heads": heads,
                    "lr": lr,
                    "warmup_steps": 50,
                    "max_steps": 600,
                    "seed": s,
                    "metric": "test/acc",
                    "value": 0.1 if diverged else 0.9,
                    "chance": 0.1,
                    "diverged": diverged,
                    "usable": True,
                    "status": "diverged" if diverged else "completed",
                    "test_loss": math.nan if diverged else loss + rng.normal(0, 0.01),
                    "init_loss": init + rng.normal(0, 0.01),
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


def judge(claim, runs: pd.DataFrame):
    f = claim.test(Context("t", runs, runs))
    resolve(f.parts)
    return finish(f)


# pre_ln and no_norm end at the same losses on LR_GRID (the last lr: no_norm stuck at 3.0,
# above where pre_ln starts; pre_ln diverged); no_norm starts at 3.95, the others at 2.3
SAME = {1e-4: 1.0, 1e-3: 0.5, 1e-2: 0.8}
PRE = grid("pre_ln", {**SAME, 1e-1: DIVERGED}, seed=1)
NO_NORM = grid("no_norm", {**SAME, 1e-1: 3.0}, init=3.95, seed=2)
POST = grid("post_ln", {1e-4: 1.5, 1e-3: 0.5, 1e-2: 1.5, 1e-1: DIVERGED}, seed=3)


def test_one_clamp_per_task_not_each_variants_own_initial_loss():
    runs = pd.concat([PRE, NO_NORM, POST], ignore_index=True)
    assert lr_sensitivity.clamps(runs) == {"t": pytest.approx(2.3, abs=0.01)}
    # each variant clamped at its own init loss (the old rule): no_norm looks far more
    # sensitive, only because it starts higher: (0.5 + 0 + 0.3 + 2.5) / 4 vs 1.8 / 4
    own = lr_sensitivity.per_seed(NO_NORM)["lr_sensitivity"].mean()
    assert own == pytest.approx(3.3 / 4, abs=0.02)
    common = lr_sensitivity.per_seed(NO_NORM, init=lr_sensitivity.clamps(runs))
    pre = lr_sensitivity.per_seed(PRE, init=lr_sensitivity.clamps(runs))
    assert common["lr_sensitivity"].mean() == pytest.approx(pre["lr_sensitivity"].mean(), abs=0.02)
    # claim (f): post_ln is more sensitive than pre_ln; no_norm is not
    f = judge(CLAIM_F, runs)
    post_part, no_norm_part = f.parts
    assert post_part.outcome == BETTER and post_part.est.mean == pytest.approx(0.3, abs=0.02)
    assert no_norm_part.outcome == EQUIVALENT and abs(no_norm_part.est.mean) < 0.02
    assert f.verdict == NOT_SUPPORTED
    assert (
        "; L_0 2.3" in no_norm_part.name.replace("2.29", "2.3")
        and "0.0001, 0.001, 0.01, 0.1" in no_norm_part.name
    )
    # the table: every row on the task's clamp
    t = lr_sensitivity.table(runs)
    assert set(t["arch"]) == {"pre_ln", "post_ln", "no_norm"}
    assert t["clamp"].tolist() == [pytest.approx(2.3, abs=0.01)] * 3


def test_claim_f_is_supported_when_no_norm_is_more_sensitive_with_the_common_clamp():
    worse = grid("no_norm", {1e-4: 2.0, 1e-3: 0.5, 1e-2: 2.0, 1e-1: 3.0}, init=3.95, seed=4)
    f = judge(CLAIM_F, pd.concat([PRE, worse, POST], ignore_index=True))
    assert f.parts[1].est.mean == pytest.approx((1.5 + 0 + 1.5 + 1.8) / 4 - 2.6 / 4, abs=0.02)
    assert f.verdict == SUPPORTED


# (n): pre_ln on LR_GRID, qk_norm on Wortsman's grid: they share 1e-3, 1e-2, 1e-1, where
# both end at the same losses; qk_norm is bad only at the LRs pre_ln does not have
QK = {3e-4: 2.0, 1e-3: 0.5, 3e-3: 2.0, 1e-2: 0.7, 3e-2: 2.0, 1e-1: 0.9, 3e-1: DIVERGED}
PRE_N = {1e-4: 0.6, 1e-3: 0.5, 1e-2: 0.7, 1e-1: 0.9}


def test_claim_n_uses_only_the_lrs_both_variants_have():
    assert set(LR_GRID) & set(WORTSMAN_GRID) == {1e-3, 1e-2, 1e-1}
    runs = pd.concat([grid("pre_ln", PRE_N, seed=5), grid("qk_norm", QK, seed=6)])
    # each on its own grid, qk_norm would look the more sensitive by far
    own = {a: lr_sensitivity.per_seed(runs[runs["arch"] == a])["lr_sensitivity"].mean()
           for a in ("pre_ln", "qk_norm")}  # fmt: skip
    assert own["qk_norm"] - own["pre_ln"] > 0.5
    (part,) = judge(CLAIM_N, runs).parts
    assert "on LRs 0.001, 0.01, 0.1;" in part.name
    assert part.est.n == SEEDS and abs(part.est.mean) < 0.02 and part.outcome == EQUIVALENT


def test_claim_n_has_no_estimate_below_three_shared_lrs():
    pre = grid("pre_ln", {k: v for k, v in PRE_N.items() if k != 1e-1}, seed=5)
    (part,) = judge(CLAIM_N, pd.concat([pre, grid("qk_norm", QK, seed=6)])).parts
    assert part.est.n == 0 and part.outcome != BETTER
    assert "no estimate: fewer than 3 LRs shared (shared: 0.001, 0.01)" in part.name
    assert "no runs to compare" in part.text()


def test_a_seed_without_every_shared_lr_is_left_out_not_compared_on_fewer():
    # four shared LRs; seed 0 of pre_ln lacks one: it is not compared on the other three
    pre = grid("pre_ln", {**PRE_N, 3e-4: 0.6}, seed=5)
    pre = pre[~((pre["seed"] == 0) & (pre["lr"] == 1e-2))]
    (part,) = judge(CLAIM_N, pd.concat([pre, grid("qk_norm", QK, seed=6)])).parts
    assert part.est.n == SEEDS - 1 and "on LRs 0.0003, 0.001, 0.01, 0.1;" in part.name


def test_head_counts_are_never_pooled_in_the_claim():
    # pre_ln at 1 head is very sensitive; only its 4-head grid has a qk_norm counterpart
    sharp = grid("pre_ln", {1e-3: 0.5, 1e-2: 2.2, 1e-1: DIVERGED}, heads=1, seed=7)
    runs = pd.concat([sharp, grid("pre_ln", PRE_N, seed=5), grid("qk_norm", QK, seed=6)])
    (part,) = judge(CLAIM_N, runs).parts
    assert part.est.n == SEEDS and abs(part.est.mean) < 0.02


def test_the_table_keys_rows_by_heads_and_sets_rows_side_by_side_on_one_lr_set():
    wide = {**PRE_N, **{lr: 0.8 for lr in WORTSMAN_GRID if lr not in PRE_N}}  # 8 LRs
    sharp = grid("pre_ln", {1e-3: 0.5, 1e-2: 2.2, 1e-1: DIVERGED}, heads=1, seed=7)
    runs = pd.concat([grid("pre_ln", wide, seed=5), grid("qk_norm", QK, seed=6), sharp])
    t = lr_sensitivity.table(runs)
    # heads 4: pre_ln on its own 8 LRs, and pre_ln and qk_norm on qk_norm's 7; heads 1 apart
    four = t[t["heads"] == 4]
    assert sorted(zip(four["n_lrs"], four["arch"], strict=True)) == [
        (7, "pre_ln"), (7, "qk_norm"), (8, "pre_ln")
    ]  # fmt: skip
    on_qk = four[four["n_lrs"] == 7].set_index("arch")
    assert on_qk.loc["pre_ln", "lrs"] == on_qk.loc["qk_norm", "lrs"]
    pre = runs[(runs["arch"] == "pre_ln") & (runs["heads"] == 4)]
    only = lr_sensitivity.per_seed(pre, WORTSMAN_GRID, lr_sensitivity.clamps(runs))
    assert on_qk.loc["pre_ln", "mean"] == pytest.approx(only["lr_sensitivity"].mean())
    one = t[t["heads"] == 1]
    assert len(one) == 1 and one["mean"].iloc[0] > 1.0  # not pooled with 4 heads
    head, rows = content.lr_table(SimpleNamespace(lr_table=t))
    assert head[:4] == ["task", "variant", "depth", "heads"] and "LR set" in head
    assert {r[3] for r in rows} == {"1", "4"}


def test_lr_figure_plots_the_common_clamp():
    """The LR-sweep figure shows what (f) and (n) average: one L_0 per task, not each
    variant's own init loss (no_norm's diverged run sits at 2.3, not at its own 3.95)."""
    from resnorm.report.figures.aggregated import clamped_losses

    runs = pd.DataFrame(
        {
            "task": ["t"] * 4,
            "arch": ["pre_ln", "pre_ln", "no_norm", "no_norm"],
            "lr": [1e-3, 1e-1, 1e-3, 1e-1],
            "seed": [0, 0, 0, 0],
            "init_loss": [2.3, 2.3, 3.95, 3.95],
            "test_loss": [0.3, 2.9, 0.4, float("nan")],
            "diverged": [False, False, False, True],
            "usable": [True] * 4,
        }
    )
    got = clamped_losses(runs)["clamped"].tolist()
    assert got == pytest.approx([0.3, 2.3, 0.4, 2.3])
