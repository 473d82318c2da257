"""Claims (a), (b), (c) test the claims as stated, on synthetic runs whose truth is known:
(a) Pre-LN's profile must be flat, not just below Post-LN's; (b) needing warmup shows as
failures or as a when-it-trains gain, and a failed seed's score never enters a gain; (c)
a collapse measure at its ceiling is not testable, and stopping training shows as failures
or as a when-it-trains score."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from resnorm.report.analysis import failures, stats
from resnorm.report.analysis.probes import add_probe_columns
from resnorm.report.claims.article import CLAIM_K, CLAIM_L, CLAIM_M
from resnorm.report.claims.ceiling import CeilingPart, ceiling
from resnorm.report.claims.either import either
from resnorm.report.claims.literature_stability import (
    CLAIM_A,
    CLAIM_B,
    CLAIM_C,
    LAST,
    exponent_depths,
    local_exponent,
    theorem_1,
)
from resnorm.report.claims.literature_warmup import gain_estimate, warmup_arms, warmup_gain
from resnorm.report.claims.rules import Context, finish
from resnorm.report.claims.verdicts import (
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    SUPPORTED,
    WORSE,
    Part,
    failure_part,
    resolve,
)

SEEDS = 8


def _rows(arch, values, depth=8, lr=1e-3, warmup=50, **extra) -> pd.DataFrame:
    """Usable runs of one cell, one per seed; a score at chance (0.1) is a failed run."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    return pd.DataFrame(
        {
            "task": "t",
            "arch": arch,
            "depth": depth,
            "dim": 64,
            "heads": 4,
            "lr": lr,
            "warmup_steps": warmup,
            "max_steps": 200,
            "seed": np.arange(n),
            "value": values,
            "metric": "test/acc",
            "chance": 0.1,
            "diverged": False,
            "usable": True,
            "status": "completed",
            **{k: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for k, v in extra.items()},
        }
    )


def _judge(claim, *frames: pd.DataFrame):
    runs = pd.concat(frames, ignore_index=True)
    f = claim.test(Context("t", runs, runs))
    resolve(f.parts)
    return finish(f)


def _noise(rng, mean, sd=0.02):
    return mean + rng.normal(0.0, sd, SEEDS)


# ---- (a): Post-LN grows, Pre-LN is flat ----


def _grad_study(rng, post_slope, pre_slope):
    return (
        _rows("post_ln", _noise(rng, 0.8), init_grad_slope=_noise(rng, post_slope, 0.05)),
        _rows("pre_ln", _noise(rng, 0.8), init_grad_slope=_noise(rng, pre_slope, 0.02)),
    )


def test_a_a_falling_pre_ln_profile_is_not_flat():
    """Pre-LN falling toward the output (slope −1.1, as on image_digits) only widens the
    post − pre contrast: the old rule (post slope and contrast) said supported."""
    f = _judge(CLAIM_A, *_grad_study(np.random.default_rng(0), 0.5, -1.1))
    post, pre, contrast = f.parts
    assert post.outcome == BETTER and contrast.outcome == BETTER
    assert pre.expect == EQUIVALENT and pre.outcome == WORSE
    assert f.verdict == NOT_SUPPORTED


def test_a_growing_post_ln_and_flat_pre_ln_support_it():
    f = _judge(CLAIM_A, *_grad_study(np.random.default_rng(1), 0.5, 0.0))
    assert [p.outcome for p in f.parts] == [BETTER, EQUIVALENT, BETTER]
    assert f.verdict == SUPPORTED
    # one depth only: Theorem 1's exponent is not estimated, and says why
    assert any("Theorem 1" in d and "no two depths" in d for d in f.details)


def test_a_counts_one_init_per_architecture_and_seed_at_depths_both_arms_have():
    """An lr-grid copy of each post_ln run is not a replicate; a depth only post_ln has
    (here with a falling profile) does not enter the post_ln part."""
    rng = np.random.default_rng(2)
    post, pre = _grad_study(rng, 0.5, 0.0)
    copy = post.assign(lr=1e-2)
    deeper = _rows("post_ln", _noise(rng, 0.8), depth=16, init_grad_slope=-2.0)
    f = _judge(CLAIM_A, post, copy, deeper, pre)
    assert f.parts[0].seeds == SEEDS and f.parts[0].est.n == SEEDS
    assert f.parts[0].est.mean == pytest.approx(post["init_grad_slope"].mean())
    assert f.verdict == SUPPORTED


# ---- (a), Theorem 1: the local depth exponent of the last block's gradient norm ----

# per arm, the exponent between each pair of adjacent depths (a power law piecewise)
EXPONENTS = {"post_ln": {8: 1.0, 16: 0.0}, "pre_ln": {8: 1.0, 16: -0.5}}


def _last_ln(rng, arch, depths=(4, 8, 16)):
    """One arm's runs at each depth: ln(last-block norm) follows EXPONENTS from depth 4
    up (ln-per-ln(depth)), each seed with its own offset and a little noise."""
    offset = rng.normal(0.0, 0.3, SEEDS)
    frames, y = [], offset.copy()
    for prev, d in zip((None, *depths), depths, strict=False):
        if prev is not None:
            y = y + EXPONENTS[arch][d] * math.log(d / prev) + rng.normal(0.0, 0.01, SEEDS)
        frames.append(_rows(arch, _noise(rng, 0.8), depth=d, init_grad_slope=0.0, **{LAST: y}))
    return pd.concat(frames, ignore_index=True)


def _expected(runs, lo, hi):
    at = runs.set_index(["depth", "seed"])[LAST]
    return ((at[hi] - at[lo]) / math.log(hi / lo)).dropna()


def test_a_exponent_is_from_the_two_largest_depths_both_arms_have():
    """Depths 4, 8, 16 for both arms (4 → 8 grows by ln-slope 1 in both) and a depth 32
    only post_ln has: the exponents are those from 8 to 16, whatever depth 4 or 32 say."""
    rng = np.random.default_rng(5)
    post, pre = _last_ln(rng, "post_ln"), _last_ln(rng, "pre_ln")
    lone = _rows("post_ln", _noise(rng, 0.8), depth=32, **{LAST: 9.0})
    assert exponent_depths(pd.concat([post, lone]), pre) == [8, 16]
    for arm, truth in ((post, 0.0), (pre, -0.5)):
        got = local_exponent(arm, 8, 16)
        assert got.to_numpy() == pytest.approx(_expected(arm, 8, 16).to_numpy())
        assert got.mean() == pytest.approx(truth, abs=0.05)
    f = _judge(CLAIM_A, post, pre, lone)
    shown = [d for d in f.details if "d ln(depth)" in d]
    assert len(shown) == 3 and all("depth 8 → 16" in d for d in shown)
    assert "post_ln" in shown[0] and "asymptotic: 0)" in shown[0] and "n=8" in shown[0]
    assert "pre_ln" in shown[1] and "asymptotic: −0.5)" in shown[1]
    # a shallower depth neither arm's exponent is taken from changes nothing shown
    deep_only = [g[g["depth"] > 4] for g in (post, pre)]
    assert theorem_1(*deep_only) == theorem_1(post, pre)
    # without depth 16, the exponent comes from 4 → 8 instead (ln-slope 1 for both)
    shallow = [g[g["depth"] < 16] for g in (post, pre)]
    assert exponent_depths(*shallow) == [4, 8]
    assert local_exponent(shallow[1], 4, 8).mean() == pytest.approx(1.0, abs=0.05)


def test_a_exponent_drops_a_seed_missing_at_one_depth():
    """pre_ln's seed 0 has no last-block norm at depth 16 and an outlier at depth 8: it is
    left out (n = 7), not compared unpaired with the other seeds."""
    rng = np.random.default_rng(6)
    post, pre = _last_ln(rng, "post_ln", (8, 16)), _last_ln(rng, "pre_ln", (8, 16))
    at = lambda d: (pre["depth"] == d) & (pre["seed"] == 0)  # noqa: E731
    pre.loc[at(16), LAST] = math.nan
    pre.loc[at(8), LAST] = 50.0
    got = local_exponent(pre, 8, 16)
    assert sorted(got.index) == list(range(1, SEEDS))
    assert got.mean() == pytest.approx(_expected(pre, 8, 16).mean())
    assert got.mean() == pytest.approx(-0.5, abs=0.05)
    lines = theorem_1(post, pre)
    assert "n=7" in lines[1] and "n=7" in lines[2] and "n=8" in lines[0]
    # a depth where one arm keeps fewer than MIN_SEEDS seeds is not a complete cell
    pre.loc[(pre["depth"] == 16) & (pre["seed"] > 1), LAST] = math.nan
    assert exponent_depths(post, pre) == []


def test_the_last_block_gradient_norm_column_is_its_log():
    probe = {"grad_norm": {"block": [1.0, 2.0, math.e**2]}}
    runs = pd.DataFrame(
        {
            "init_probe": [probe, None, {"grad_norm": {"block": [1.0, 0.0]}}],
            "final_probe": [None, None, None],
            "diverged": [False, False, False],
            "test_loss": [1.0, 1.0, 1.0],
        }
    )
    out = add_probe_columns(runs)[LAST]
    assert out[0] == pytest.approx(2.0) and math.isnan(out[1]) and math.isnan(out[2])


# ---- (k)-(m): the test texts say the one-interval decision they make ----


@pytest.mark.parametrize("claim", [CLAIM_K, CLAIM_L, CLAIM_M], ids=lambda c: c.key)
def test_article_test_texts_state_the_one_interval_decision(claim):
    probes = ("init_grad_spread", "init_attn_entropy", "init_attn_max_logit")
    probes += ("final_attn_entropy", "final_attn_max_logit")
    rng = np.random.default_rng(7)
    archs = ("plain", "no_norm", "no_residual", "pre_ln", "uncentered_ln", "bert")
    runs = [
        _rows(a, _noise(rng, 0.8), heads=h, **{c: 0.0 for c in probes})
        for a in (*archs, "unscaled_attn")
        for h in (4, 1)
    ]
    text = _judge(claim, *runs).test
    assert "(1 − α) interval" in text
    assert "Holm-adjusted when the claim is primary, else exploratory" in text
    assert "t-test" not in text and "TOST" not in text and "(Holm)" not in text
    assert ("when it trains" in text) == (claim.key in "lm")


def test_m_part_2_counts_failures_and_compares_advantages_where_all_four_trained():
    """Unscaled attention failing at d_k = 64 on seeds 0-2 is a failure count (3/8 vs 0/8),
    not three huge advantages averaged with five equal ones; the score form compares the
    five seeds where all four runs trained (equal advantages: equivalent)."""
    rng = np.random.default_rng(11)
    base = _noise(rng, 0.85, 0.003)
    broken = base.copy()
    broken[:3] = 0.1
    probes = {c: 0.0 for c in ("init_attn_entropy", "init_attn_max_logit",
                               "final_attn_entropy", "final_attn_max_logit")}  # fmt: skip
    f = _judge(
        CLAIM_M,
        _rows("pre_ln", base + 0.002, **probes),
        _rows("pre_ln", base + 0.002, heads=1, **probes),
        _rows("unscaled_attn", base, **probes),
        _rows("unscaled_attn", broken, heads=1, **probes),
    )
    grows = f.parts[1]
    fails, score = grows.forms
    assert (fails.fewer, fails.more) == (failures.Count(0, 8), failures.Count(3, 8))
    assert score.est.n == 5 and abs(score.est.mean) < 0.01
    assert grows.outcome == INCONCLUSIVE  # 0/8 vs 3/8 points the claimed way, not significant


# ---- the EitherPart: one decision over a failure form and a score form ----


def test_either_is_better_when_one_form_is_with_bonferroni_over_the_forms():
    fails = failure_part("f", failures.Count(0, 8), failures.Count(8, 8), ("a", "b"), 3)
    no_score = Part("s", stats.NONE, 0, BETTER, 0.01)
    part = either("x", fails, no_score)
    resolve([part])
    one_sided = sps.fisher_exact([[0, 8], [8, 0]], alternative="less").pvalue
    assert part.p == pytest.approx(2 * 2 * one_sided) and part.outcome == BETTER
    assert "0/8 failed" in part.text() and "Bonferroni ×2" in part.text()


def test_either_is_refuted_only_when_no_form_points_the_claimed_way():
    rng = np.random.default_rng(3)
    flat = Part("s", stats.mean_ci(rng.normal(0.0, 0.002, 8)), 8, BETTER, 0.01)
    none = failure_part("f", failures.Count(0, 8), failures.Count(0, 8), ("a", "b"), 3)
    suggestive = failure_part("f", failures.Count(0, 8), failures.Count(2, 8), ("a", "b"), 3)
    refuted, open_ = either("x", none, flat), either("x", suggestive, flat)
    resolve([refuted, open_])
    assert refuted.outcome == EQUIVALENT and refuted.contradicts()
    assert open_.outcome == INCONCLUSIVE and not open_.contradicts()


# ---- (b): Post-LN needs warmup, Pre-LN much less ----


def _warmup_study(rng, post_cold, pre_cold, post_warm=None, pre_warm=None):
    """Scores with warmup 50 (default 0.9 + noise) and without (given per seed)."""
    post_warm = _noise(rng, 0.9, 0.003) if post_warm is None else post_warm
    pre_warm = _noise(rng, 0.9, 0.003) if pre_warm is None else pre_warm
    return (
        _rows("post_ln", post_warm),
        _rows("post_ln", post_cold, warmup=0),
        _rows("pre_ln", pre_warm),
        _rows("pre_ln", pre_cold, warmup=0),
    )


def test_b_failing_without_warmup_supports_it_with_no_score_left_to_compare():
    """post_ln fails on every seed without warmup: no seed is left where both its runs
    trained (the old gain counted the failed runs' chance scores as a gain of 0.8); the
    failure form decides it."""
    rng = np.random.default_rng(4)
    frames = _warmup_study(rng, np.full(SEEDS, 0.1), _noise(rng, 0.9, 0.003))
    f = _judge(CLAIM_B, *frames)
    assert [p.outcome for p in f.parts] == [BETTER, BETTER]
    assert f.parts[0].forms[1].seeds == 0  # no seed where both post_ln runs trained
    assert f.verdict == SUPPORTED
    assert "post_ln without 8/8 failed" in f.failures_text()


def test_b_a_failed_seed_never_enters_the_gain():
    """Two seeds fail without warmup; the others score the same as with it. The old gain
    averaged the failed seeds' chance scores in: 8 gains, two of them 0.8."""
    rng = np.random.default_rng(5)
    warm = _noise(rng, 0.9, 0.003)
    cold = warm + rng.normal(0.0, 0.002, SEEDS)
    cold[:2] = 0.1
    frames = _warmup_study(rng, cold, _noise(rng, 0.9, 0.003), post_warm=warm)
    ctx = Context("t", pd.concat(frames), pd.concat(frames))
    w, c = warmup_arms(ctx, "post_ln")
    assert len(warmup_gain(w, c)) == SEEDS - 2
    est, seeds = gain_estimate("post_ln", w, c)
    assert seeds == SEEDS - 2 and abs(est.mean) < 0.005
    assert "post_ln with warmup 0/8 failed" in est.note and "post_ln without 2/8" in est.note
    # 2/8 failures point the claimed way without settling it: the equivalent gain alone
    # does not refute "needs warmup"
    f = _judge(CLAIM_B, *frames)
    assert f.parts[0].outcome == INCONCLUSIVE and f.verdict == INCONCLUSIVE


def test_b_is_refuted_when_post_ln_trains_as_well_without_warmup():
    rng = np.random.default_rng(6)
    warm = _noise(rng, 0.9, 0.003)
    frames = _warmup_study(rng, warm + rng.normal(0, 0.002, SEEDS), _noise(rng, 0.9, 0.003),
                           post_warm=warm)  # fmt: skip
    f = _judge(CLAIM_B, *frames)
    assert f.parts[0].outcome == EQUIVALENT and f.verdict == NOT_SUPPORTED


def test_b_pre_ln_needing_warmup_as_much_refutes_the_second_part():
    """Both gain 0.05 from warmup when they train, neither fails: Post-LN needs warmup,
    Pre-LN not less."""
    rng = np.random.default_rng(7)
    post_warm, pre_warm = _noise(rng, 0.9, 0.003), _noise(rng, 0.9, 0.003)
    frames = _warmup_study(
        rng, post_warm - 0.05 + rng.normal(0, 0.002, SEEDS),
        pre_warm - 0.05 + rng.normal(0, 0.002, SEEDS), post_warm, pre_warm,
    )  # fmt: skip
    f = _judge(CLAIM_B, *frames)
    assert [p.outcome for p in f.parts] == [BETTER, EQUIVALENT]
    assert f.verdict == NOT_SUPPORTED


# ---- (c): collapse with depth, deep stacks stop training ----


def _collapse_study(rng, final_shallow, final_deep, off_deep_value=None, init_shallow=0.9996):
    off_deep_value = _noise(rng, 0.5) if off_deep_value is None else off_deep_value
    return (
        _rows("pre_ln", _noise(rng, 0.9), init_cos_last=_noise(rng, 0.3), final_cos_last=0.3),
        _rows("pre_ln", _noise(rng, 0.9), depth=2, init_cos_last=0.3, final_cos_last=0.3),
        _rows(
            "no_residual",
            off_deep_value,
            init_cos_last=_noise(rng, 0.9999, 0.0001),
            final_cos_last=_noise(rng, final_deep),
        ),  # fmt: skip
        _rows(
            "no_residual",
            _noise(rng, 0.8),
            depth=2,
            init_cos_last=_noise(rng, init_shallow, 0.0001),
            final_cos_last=_noise(rng, final_shallow),
        ),  # fmt: skip
    )


def test_ceiling_rule():
    assert "ceiling" in ceiling(pd.Series([0.99, 0.97]), 0.05)
    assert (
        ceiling(pd.Series([0.9, 0.94]), 0.05) == ""
        and ceiling(pd.Series([], dtype=float), 0.05) == ""
    )
    part = CeilingPart("x", stats.mean_ci([0.01, 0.02, 0.015]), 3, BETTER, 0.05, ceiling="c")
    resolve([part])
    assert part.outcome == NOT_TESTABLE and math.isnan(part.p) and "not tested" in part.text()


def test_c_a_collapse_measure_at_its_ceiling_is_not_testable():
    """no_residual's cosine is already 0.99 at depth 2 (after training; at init 0.9996):
    the old rule read 'no rise with depth' as not supported; it cannot rise by 0.05."""
    f = _judge(CLAIM_C, *_collapse_study(np.random.default_rng(8), 0.99, 0.995))
    cos, grows, stops = f.parts
    assert cos.outcome == BETTER and stops.outcome == BETTER
    assert grows.outcome == NOT_TESTABLE and f.verdict == NOT_TESTABLE
    assert any("init cosine" in d and "ceiling" in d for d in f.details)


def test_c_collapse_after_training_with_depth_supports_it():
    f = _judge(CLAIM_C, *_collapse_study(np.random.default_rng(9), 0.6, 0.95))
    assert [p.outcome for p in f.parts] == [BETTER, BETTER, BETTER]
    assert f.verdict == SUPPORTED


def test_c_deep_stacks_that_fail_on_every_seed_stop_training():
    """no_residual at depth 8 fails on every seed: no score left to compare (the old score
    part: inconclusive, and its init cosine at the ceiling made the finding 'not
    supported'); the failure form decides."""
    rng = np.random.default_rng(10)
    f = _judge(CLAIM_C, *_collapse_study(rng, 0.6, 0.95, off_deep_value=np.full(SEEDS, 0.1)))
    stops = f.parts[2]
    assert stops.forms[1].seeds == 0 and stops.outcome == BETTER
    assert f.verdict == SUPPORTED and "no_residual 8/8 failed" in f.failures_text()


def test_c_counts_failures_only_at_the_settings_the_scores_are_compared_at():
    """pre_ln also has an LR cell (lr 1e-1, 4 seeds, 2 failing) that no_residual lacks. The
    scores are compared at lr 1e-3 only, so the counts beside them are lr 1e-3's: pre_ln
    0/8, not the 2/8 a count over every pre_ln run at depth 8 gave."""
    rng = np.random.default_rng(11)
    lr_cell = _rows("pre_ln", [0.1, 0.1, 0.9, 0.9], lr=1e-1, init_cos_last=0.3, final_cos_last=0.3)
    f = _judge(CLAIM_C, *_collapse_study(rng, 0.6, 0.95), lr_cell)
    failure_form, score_form = f.parts[2].forms
    assert failure_form.fewer.text().startswith("0/8 failed")
    assert "pre_ln 0/8 failed" in score_form.est.note
    assert "pre_ln 0/8 failed" in f.details[2] and "2/8" not in f.details[2]
