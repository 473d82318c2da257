"""Claims (d), (e), (g), (h) on synthetic run frames: (d) and (e) are judged at a depth where
their baseline fails at its own best lr (chosen on seeds 0–1, judged on seeds 2–7), (h) at
each variant's own best lr, and a pack's one step time counts once, not once per member."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from resnorm.report.claims.failing_depth import SELECT_SEEDS, failing_depth
from resnorm.report.claims.literature_alternatives import CLAIM_D, CLAIM_E, CLAIM_G, CLAIM_H
from resnorm.report.claims.literature_depth import D_GRID, E_GRID
from resnorm.report.claims.needs import LR_GRID
from resnorm.report.claims.rules import Context, finish
from resnorm.report.claims.step_time import per_timer, step_time_text
from resnorm.report.claims.verdicts import NOT_TESTABLE, SUPPORTED, resolve
from resnorm.report.sources.rows import summary_row

SEEDS = np.arange(8, dtype=float)
CHANCE = 0.1
GOOD, BAD = 0.9, CHANCE  # a trained run's score; a failed run's (chance)


def rows(arch, lr=1e-3, test=GOOD, val=None, depth=8, warmup=50, step_s=0.1, timer=None):
    """One cell, 8 seeds; ``test`` / ``val`` a number or one value per seed."""
    test = np.broadcast_to(np.asarray(test, dtype=float), SEEDS.shape)
    # a trained run varies by seed (±, mean 0, per arch), so paired differences vary too
    jitter = 0.001 * (1 + sum(map(ord, arch)) % 5) * (-1.0) ** SEEDS
    test = np.where(test > 2 * CHANCE, test + jitter, test)
    val = test if val is None else np.broadcast_to(np.asarray(val, dtype=float), SEEDS.shape)
    return pd.DataFrame(
        {
            "task": "t",
            "arch": arch,
            "depth": float(depth),
            "dim": 64.0,
            "heads": 4.0,
            "lr": lr,
            "warmup_steps": float(warmup),
            "max_steps": 600.0,
            "seed": SEEDS,
            "value": test,
            "m_val_best/acc": val,
            "metric": "test/acc",
            "chance": CHANCE,
            "diverged": False,
            "usable": True,
            "status": "completed",
            "train_s_per_step": step_s,
            "step_timer": timer or f"{arch}-{depth}-{lr}-{warmup}",
        }
    )


def grid(arch, depth=8, scores=None, lrs=LR_GRID):
    """``arch`` at every lr of the grid: lr -> score (default: trains at every lr)."""
    scores = scores or {}
    return [rows(arch, lr, scores.get(lr, GOOD), depth=depth) for lr in lrs]


def judge(*frames, claims=(CLAIM_D, CLAIM_E, CLAIM_G, CLAIM_H)) -> dict:
    runs = pd.concat(frames, ignore_index=True)
    ctx = Context("t", runs, runs)
    found = [c.test(ctx) for c in claims]
    resolve([p for f in found for p in f.parts])
    return {f.id: finish(f) for f in found}


def per_seed(select: float, judged: float) -> np.ndarray:
    """Seeds 0–1 score ``select``, seeds 2–7 ``judged``."""
    return np.where(np.isin(SEEDS, SELECT_SEEDS), select, judged)


# (d): rezero, pre_ln and no_norm over the grid at depth 8; at depth 32 at lr 1e-3
def d_frames(no_norm_32=GOOD, rezero_32=GOOD) -> list:
    frames = [*grid("rezero"), *grid("pre_ln"), *grid("no_norm")]
    frames += [rows("rezero", test=rezero_32, depth=32), rows("pre_ln", depth=32)]
    return frames + [rows("no_norm", test=no_norm_32, depth=32)]


def test_d_is_not_testable_where_no_norm_trains_at_every_depth_run():
    # the old rule: rezero not worse than pre_ln at depth 8 -> supported; but no_norm trains
    # there too, so depth 8 (or 32) says nothing about training without a norm
    d = judge(*d_frames(), claims=(CLAIM_D,))["d"]
    assert d.verdict == NOT_TESTABLE
    why = d.details[0]
    assert why.startswith("not testable at the depths run") and "(8, 32;" in why
    assert "depth 8: mean 0.9 at lr 1e-4" in why and "depth 32: mean 0.9 at lr 1e-3" in why


def test_d_is_inconclusive_while_a_no_norm_depth_is_missing():
    frames = [
        f for f in d_frames() if not (f["arch"].iloc[0] == "no_norm" and f["depth"].iloc[0] == 32)
    ]
    d = judge(*frames, claims=(CLAIM_D,))["d"]
    assert d.verdict == "inconclusive"
    assert any("no_norm depth=32 lr=0.001" in m for m in d.missing)


def test_d_is_judged_where_no_norm_fails_on_the_judged_seeds_only():
    d = judge(*d_frames(no_norm_32=BAD), claims=(CLAIM_D,))["d"]
    assert d.verdict == SUPPORTED
    head, fails = d.parts
    assert "depth 32, seeds 2–7" in head.name and head.seeds == 6
    assert (fails.fewer.k, fails.fewer.n, fails.more.k, fails.more.n) == (0, 6, 6, 6)
    # no grid at depth 32: said with the verdict
    assert d.caveat.startswith("no_norm, rezero, pre_ln at lr 1e-3 only")
    # rezero failing as often as no_norm there: the failure part is not shown -> not supported
    d = judge(*d_frames(no_norm_32=BAD, rezero_32=BAD), claims=(CLAIM_D,))["d"]
    assert d.verdict != SUPPORTED


def test_d_asks_whether_no_norm_fails_at_its_own_best_lr_not_at_the_base_lr():
    # depth 32 with no_norm's whole grid: it fails at lr 1e-3 but trains at 1e-4 (val-best)
    frames = d_frames(no_norm_32=BAD) + [
        rows("no_norm", lr, GOOD if lr == 1e-4 else BAD, depth=32) for lr in LR_GRID if lr != 1e-3
    ]
    d = judge(*frames, claims=(CLAIM_D,))["d"]
    assert d.verdict == NOT_TESTABLE
    assert any("no_norm at depth 32: lr 1e-4 chosen on validation" in x for x in d.details)


def test_d_depth_is_chosen_on_seeds_0_and_1():
    # no_norm fails at depth 32 on seeds 2–7 only: seeds 0–1 train, so 32 is not chosen
    d = judge(*d_frames(no_norm_32=per_seed(GOOD, BAD)), claims=(CLAIM_D,))["d"]
    assert d.verdict == NOT_TESTABLE


# (e): deepnorm and post_ln at depths 16 and 32 over lr {3e-4, 1e-3} x warmup 50
def e_frames(post: dict, deep=GOOD) -> list:
    """post: depth -> post_ln's score at both grid lrs (a number or one value per seed)."""
    out = []
    for depth, score in post.items():
        for lr, warmup in E_GRID:
            out.append(rows("post_ln", lr, score, depth=depth, warmup=warmup))
            out.append(rows("deepnorm", lr, deep, depth=depth, warmup=warmup))
    return out


def test_e_depth_is_chosen_on_seeds_0_and_1_and_does_not_move_with_seeds_2_to_7():
    ctx_of = lambda frames: Context("t", *(pd.concat(frames, ignore_index=True),) * 2)  # noqa: E731
    # seeds 0–1: post_ln fails at 16 on both, at 32 on neither
    chosen = []
    for later in (GOOD, BAD, np.linspace(0.1, 0.9, 8)):
        post = {16: per_seed(BAD, later), 32: per_seed(GOOD, BAD)}
        depth, _, _ = failing_depth(ctx_of(e_frames(post)), "post_ln", E_GRID)
        chosen.append(depth)
    assert chosen == [16.0, 16.0, 16.0]
    e = judge(*e_frames({16: per_seed(BAD, BAD), 32: per_seed(GOOD, BAD)}), claims=(CLAIM_E,))["e"]
    assert e.verdict == SUPPORTED and "depth 16, seeds 2–7" in e.parts[0].name
    assert e.n == 6


def test_e_ties_go_to_the_deeper_depth_and_most_failures_win():
    ctx = Context("t", *(pd.concat(e_frames({16: BAD, 32: BAD}), ignore_index=True),) * 2)
    assert failing_depth(ctx, "post_ln", E_GRID)[0] == 32.0
    half = per_seed(np.where(SEEDS == 0, BAD, GOOD), GOOD)  # fails on seed 0 only
    ctx = Context("t", *(pd.concat(e_frames({16: BAD, 32: half}), ignore_index=True),) * 2)
    assert failing_depth(ctx, "post_ln", E_GRID)[0] == 16.0


def test_e_headline_needs_the_failures_shown_not_merely_not_contradicted():
    # post_ln fails on seeds 0–1 at depth 32 but trains on 2–7: 0/6 against deepnorm's 0/6.
    # A failure part that only must not contradict would call this supported.
    e = judge(*e_frames({16: GOOD, 32: per_seed(BAD, GOOD)}), claims=(CLAIM_E,))["e"]
    assert e.verdict == "inconclusive"
    assert any("when both train" in x and "not tested" in x for x in e.details)


def test_e_post_ln_at_its_own_best_lr_is_not_a_failure_at_the_base_lr():
    # post_ln fails at lr 1e-3 at both depths but trains at 3e-4, its val-best: it does not
    # fail at its own best lr, so the claim is not testable at these depths
    frames = [
        rows(a, lr, GOOD if (a == "deepnorm" or lr == 3e-4) else BAD, depth=d, warmup=w)
        for a in ("post_ln", "deepnorm")
        for d in (16, 32)
        for lr, w in E_GRID
    ]
    e = judge(*frames, claims=(CLAIM_E,))["e"]
    assert e.verdict == NOT_TESTABLE
    assert any("post_ln at depth 32: lr 3e-4 chosen on validation" in x for x in e.details)


# (h), (g)
def test_h_compares_each_variant_at_its_own_best_lr():
    rms = {1e-4: 0.5, 1e-3: 0.80, 1e-2: 0.95, 1e-1: 0.2}
    ref = {1e-4: 0.5, 1e-3: 0.94, 1e-2: 0.90, 1e-1: 0.2}
    h = judge(*grid("rmsnorm_pre", scores=rms), *grid("pre_ln", scores=ref), claims=(CLAIM_H,))
    h = h["h"]
    # at lr 1e-3 only (the old rule) rmsnorm is 0.14 behind: "worse"; at own best, +0.01
    assert h.effect == pytest.approx(0.95 - 0.94) and "own best lr" in h.parts[0].name
    assert "(1 − α) interval" in h.test and "t-test" not in h.test


def test_eight_identical_step_times_of_one_pack_are_one_measurement():
    pack = rows("rmsnorm_pre", step_s=0.25, timer="pack-a")
    assert len(per_timer(pack)) == 1  # not 8 replicates
    # without a timer column (older summaries) identical values still count once
    assert len(per_timer(pack.drop(columns="step_timer"))) == 1
    assert len(per_timer(pack.assign(step_timer=[f"run{i}" for i in range(8)]))) == 1
    ref = pd.concat([rows("pre_ln", lr, step_s=0.2 + lr, timer=f"p{lr}") for lr in LR_GRID])
    assert len(per_timer(ref)) == 4
    text = step_time_text("s/step", pack, ref)
    assert "1 vs 4" in text and "no CI" in text  # one pack: no interval, never a zero-width one
    two = pd.concat([pack, rows("rmsnorm_pre", 1e-2, step_s=0.3, timer="pack-b")])
    assert "2 vs 4" in step_time_text("s/step", two, ref)


def test_h_shows_step_times_one_per_pack():
    frames = [rows("rmsnorm_pre", lr, step_s=0.3 + lr, timer=f"r{lr}") for lr in LR_GRID]
    frames += [rows("pre_ln", lr, step_s=0.2 + lr, timer=f"p{lr}") for lr in LR_GRID]
    h = judge(*frames, claims=(CLAIM_H,))["h"]
    line = next(x for x in h.details if x.startswith("train s/step"))
    assert "4 vs 4" in line and "not tested" in line


def test_a_packed_members_step_time_is_the_packs():
    base = {"status": "completed", "task": "t", "throughput": {"train_steps_per_s": 4.0}}
    packed = summary_row({**base, "pack": {"id": "abc", "index": 3, "size": 8}}, "/r/3", "s")
    alone = summary_row(base, "/r/solo", "s")
    assert packed["step_timer"] == "abc" and alone["step_timer"] == "/r/solo"
    assert packed["train_s_per_step"] == 0.25


def test_g_text_states_the_one_interval_decision():
    g = judge(*grid("dyt_pre"), *grid("pre_ln"), claims=(CLAIM_G,))["g"]
    assert "(1 − α) interval" in g.test and "when it trains" in g.test
    assert "t-test" not in g.test and "TOST" not in g.test


def test_d_grid_is_the_lr_grid_at_the_base_warmup():
    assert [lr for lr, _ in D_GRID] == list(LR_GRID) and {w for _, w in D_GRID} == {50.0}


def test_e_null_with_equal_failure_rates_declares_better_at_most_at_alpha():
    # both arms fail each seed with probability 1/2 at depths 16 and 32: the depth is picked
    # where post_ln happened to fail on seeds 0–1, which says nothing about seeds 2–7
    rng = np.random.default_rng(3)
    reports, better = 300, 0
    for _ in range(reports):
        frames = []
        for depth in (16, 32):
            for arch in ("post_ln", "deepnorm"):
                fails = rng.random(8) < 0.5
                for lr, warmup in E_GRID:
                    score = np.where(fails, BAD, GOOD)
                    frames.append(rows(arch, lr, score, depth=depth, warmup=warmup))
        e = judge(*frames, claims=(CLAIM_E,))["e"]
        better += e.verdict == SUPPORTED
    assert better / reports <= 0.05 + 2.33 * np.sqrt(0.05 * 0.95 / reports), better
