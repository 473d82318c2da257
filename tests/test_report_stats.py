"""Statistics of the report against distributions whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from resnorm.report.analysis import lr_sensitivity, stats
from resnorm.report.claims import rules, verdicts
from resnorm.report.figures.optuna_study import pareto_mask


def test_t_interval_covers_a_known_mean_95_percent_of_the_time_even_at_three_seeds():
    rng = np.random.default_rng(0)
    for n in (3, 8):
        hits = 0
        for _ in range(2000):
            est = stats.mean_ci(rng.normal(3.0, 2.0, size=n))
            hits += est.low <= 3.0 <= est.high
        # exact for normal data; a percentile bootstrap gives ~0.75 at n=3
        assert 0.935 <= hits / 2000 <= 0.965, (n, hits / 2000)


def test_ci_narrows_with_more_seeds_and_is_reproducible():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0, 1, 5), rng.normal(0, 1, 200)
    a, b = stats.mean_ci(small), stats.mean_ci(large)
    assert (a.high - a.low) > 2 * (b.high - b.low)
    assert stats.mean_ci(small) == stats.mean_ci(small)


def _part(est: stats.Estimate, seeds: int, expect: str = verdicts.BETTER, m: float = 0.01):
    part = verdicts.Part("x", est, seeds, expect, m)
    verdicts.resolve([part])
    return part


def test_one_value_has_no_ci_and_cannot_support_a_finding():
    est = stats.mean_ci([0.9])
    assert est.n == 1 and est.low is None and est.high is None and not est.has_ci
    assert "no CI" in est.text()
    part = _part(est, seeds=1)
    assert not part.testable and math.isnan(part.p_value())
    assert part.outcome == verdicts.INCONCLUSIVE and verdicts.combine([part]) == "inconclusive"
    assert stats.mean_ci([]).n == 0 and math.isnan(stats.mean_ci([math.nan]).mean)


def test_two_seeds_are_inconclusive_even_with_a_large_effect():
    est = stats.mean_ci([5.0, 5.1])
    assert est.has_ci and est.low > 0
    assert _part(est, seeds=2).outcome == verdicts.INCONCLUSIVE


def test_one_sided_p_values_match_scipy():
    from scipy import stats as sps

    x = np.array([0.3, 0.1, 0.25, 0.4, 0.05])
    est = stats.mean_ci(x)
    want = sps.ttest_1samp(x, 0.0, alternative="greater").pvalue
    assert est.p_above(0.0) == pytest.approx(want)
    want = sps.ttest_1samp(x, 0.5, alternative="less").pvalue
    assert est.p_below(0.5) == pytest.approx(want)


def _runs(values: list[float], seeds: list[int], **fixed) -> pd.DataFrame:
    return pd.DataFrame(
        {"seed": seeds, "value": values, **{k: [v] * len(seeds) for k, v in fixed.items()}}
    )


def test_paired_difference_of_identical_inputs_is_exactly_zero():
    a = _runs([0.71, 0.64, 0.80], [0, 1, 2], depth=4)
    est, pairs = stats.difference(a, a.copy(), ["depth", "seed"], "value")
    assert est.paired and len(pairs) == 3
    assert est.mean == 0.0 and est.low == 0.0 and est.high == 0.0
    # no spread: copies of one measurement, not replicates: no t-test p-value at all
    assert math.isnan(est.p_above(-0.02)) and math.isnan(est.p_above(0.0))
    # ... so the part is not tested (not in the Holm family) unless declared exact
    part = _part(est, 3, verdicts.EQUIVALENT, 0.02)
    assert part.exact and part.outcome == verdicts.NOT_TESTABLE and math.isnan(part.p_adj)
    assert verdicts.combine([part]) == verdicts.NOT_TESTABLE


def test_pairing_removes_seed_to_seed_variation():
    # seed effects are huge, the variant effect is a constant +0.01: only pairing sees it
    seed_effect = [0.2, 0.5, 0.9, 0.3, 0.7, 0.4, 0.6, 0.8]
    a = _runs([s + 0.01 for s in seed_effect], list(range(8)))
    b = _runs(seed_effect, list(range(8)))
    paired, _ = stats.difference(a, b, ["seed"], "value")
    unpaired = stats.unpaired_difference(a["value"], b["value"])
    assert paired.paired and paired.low == pytest.approx(0.01)
    assert paired.high == pytest.approx(0.01)
    # equal differences: one measurement copied 8 times, never 8 replicates: an exact
    # check if the quantity is declared seed-independent, else not testable
    part = _part(paired, 8)
    assert part.exact and math.isnan(part.p) and part.outcome == verdicts.NOT_TESTABLE
    check = verdicts.Part("x", paired, 8, verdicts.BETTER, 0.01, deterministic=True)
    verdicts.resolve([check])
    assert check.outcome == verdicts.BETTER
    assert unpaired.low < 0 < unpaired.high  # the same data, unpaired: cannot tell


def test_unpaired_fallback_averages_the_same_settings_in_both_arms():
    """No shared seeds: each arm's per-seed means cover the settings both have, from seeds
    that ran all of them; a seed that ran only the easy setting is not pooled in."""
    rng = np.random.default_rng(3)

    def rows(seeds, depths):
        return [{"seed": s, "depth": d, "value": (1.0 if d == 2 else 0.0) + rng.normal(0, 0.01)}
                for s in seeds for d in depths]  # fmt: skip

    a = pd.DataFrame(rows(range(4), [2]) + rows(range(4, 8), [2, 8]))
    b = pd.DataFrame(rows(range(10, 18), [2, 8]))
    est, pairs = stats.difference(a, b, ["depth", "seed"], "value")
    assert pairs.empty and not est.paired and est.n == 4  # seeds 4-7 of a only
    assert est.low <= 0.0 <= est.high and est.high - est.low < 0.05
    # (pooling a's easy-only seeds 0-3 in would put the difference near +0.25)


def test_unpaired_difference_finds_a_known_shift():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 0.1, 12), rng.normal(0.0, 0.1, 12)
    est = stats.unpaired_difference(a, b)
    assert est.low > 0.8 and est.high < 1.2 and est.low <= 1.0 <= est.high


def test_settings_are_not_seeds():
    # 3 seeds at each of depths 2 and 8: the seeds' differences are averaged over the two
    # depths, so n = 3, not 6
    a = pd.concat([_runs([0.9, 0.8, 0.85], [0, 1, 2], depth=d) for d in (2, 8)])
    b = pd.concat([_runs([0.7, 0.75, 0.6], [0, 1, 2], depth=d) for d in (2, 8)])
    est, pairs = stats.difference(a, b, ["depth", "seed"], "value", min_seeds=3)
    assert est.n == 3 and len(pairs) == 6


def test_an_incomplete_setting_is_left_out():
    a = pd.concat([_runs([0.9, 0.8, 0.85], [0, 1, 2], depth=8), _runs([0.1], [0], depth=12)])
    b = pd.concat([_runs([0.7, 0.75, 0.6], [0, 1, 2], depth=8), _runs([0.9], [0], depth=12)])
    est, pairs = stats.difference(a, b, ["depth", "seed"], "value", min_seeds=3)
    assert set(pairs["depth"]) == {8} and est.mean == pytest.approx(0.5 / 3)


def test_equivalence_is_tost_within_the_margin():
    tight = stats.mean_ci([0.001, -0.002, 0.0005, 0.0])
    wide = stats.mean_ci([0.05, -0.06, 0.04, -0.03])
    assert _part(tight, 4, verdicts.EQUIVALENT, 0.02).outcome == verdicts.EQUIVALENT
    assert _part(wide, 4, verdicts.EQUIVALENT, 0.02).outcome == verdicts.INCONCLUSIVE


def test_an_effect_below_the_minimum_is_not_better():
    tiny = stats.mean_ci([0.004, 0.005, 0.0045, 0.0055, 0.005])  # clearly > 0, but < 0.01
    part = _part(tiny, 5, verdicts.BETTER, 0.01)
    assert part.candidate() == verdicts.EQUIVALENT and part.outcome != verdicts.BETTER


def test_worse_and_better_than_claimed_are_told_apart():
    worse = _part(stats.mean_ci([-0.2, -0.25, -0.22, -0.18]), 4)
    assert worse.outcome == verdicts.WORSE and worse.contradicts()
    better = _part(stats.mean_ci([0.2, 0.25, 0.22, 0.18]), 4, verdicts.EQUIVALENT, 0.02)
    assert better.outcome == verdicts.BETTER and better.contradicts()


def test_holm_matches_a_hand_computation():
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005, math.nan])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(adjusted[4])


def test_oriented_flips_bits_per_char_so_lower_is_better():
    est = stats.mean_ci([-0.2, -0.3, -0.1])  # bpc went down: better
    flipped = rules.oriented(est, -1)
    assert flipped.mean == pytest.approx(0.2) and flipped.low == pytest.approx(-est.high)
    assert flipped.p_above(0.0) == pytest.approx(est.p_below(0.0))


def test_combine_needs_every_part():
    def part(outcome: str) -> verdicts.Part:
        p = verdicts.Part("x", stats.NONE, 0, verdicts.BETTER, 0.01)
        p.outcome = outcome
        return p

    b, i, e = verdicts.BETTER, verdicts.INCONCLUSIVE, verdicts.EQUIVALENT
    assert verdicts.combine([part(b), part(b)]) == "supported"
    assert verdicts.combine([part(b), part(i)]) == "inconclusive"
    assert verdicts.combine([part(i), part(e)]) == "not supported"


def test_lr_sensitivity_matches_the_wortsman_formula():
    # final losses over 3 LRs, the last diverged (counts as the init loss 2.0)
    final, init = np.array([1.0, 0.5, np.inf]), 2.0
    # clamped [1.0, 0.5, 2.0] minus best 0.5 -> [0.5, 0, 1.5], mean 2/3
    assert lr_sensitivity.sensitivity(final, init) == pytest.approx(2 / 3)
    assert lr_sensitivity.sensitivity(np.array([0.7, 0.7, 0.7]), 2.0) == 0.0
    # a loss above the init loss is clamped to it
    assert lr_sensitivity.sensitivity(np.array([0.5, 9.0]), 2.0) == pytest.approx(0.75)


def test_layer_profile_reductions():
    growing = np.exp(np.linspace(0, 2, 6))  # ln grows by 2 from first to last layer
    assert stats.log_slope(growing) == pytest.approx(2.0)
    assert stats.log_slope([1.0, 1.0, 1.0]) == pytest.approx(0.0)
    assert math.isnan(stats.log_slope([1.0, 0.0]))
    assert stats.spread_of_log([1.0, math.e, 0.5]) == pytest.approx(1.0 + math.log(2))


def test_pareto_front_keeps_only_undominated_trials():
    score = np.array([0.9, 0.8, 0.95, 0.7])
    cost = np.array([0.5, 0.2, 0.9, 0.3])  # trial 3 is beaten by trial 1 on both
    assert pareto_mask(score, cost).tolist() == [True, True, True, False]


def test_groups_are_compared_only_within_a_shared_setting():
    deep = _runs([0.9, 0.8, 0.7], [0, 1, 2], depth=8)
    shallow = _runs([0.1, 0.2, 0.3], [0, 1, 2], depth=4)
    est, seeds = rules.compare(deep, shallow, "value", keys=("depth", "seed"))
    assert est.n == 0 and seeds == 0  # different depths: nothing to compare
    other_seeds = _runs([0.1, 0.2, 0.3], [3, 4, 5], depth=8)
    est, seeds = rules.compare(deep, other_seeds, "value", keys=("depth", "seed"))
    assert not est.paired and est.n == 3 and seeds == 3 and est.mean == pytest.approx(0.6)


def test_one_extra_deeper_seed_does_not_move_the_judged_depth():
    def arm(arch: str, depth: int, seeds: list[int]) -> pd.DataFrame:
        return _runs([0.5] * len(seeds), seeds, arch=arch, depth=depth, dim=64, heads=4, lr=1e-3,
                     warmup_steps=50, max_steps=200)  # fmt: skip

    runs = pd.concat(
        [arm(a, 8, [0, 1, 2]) for a in ("pre_ln", "no_residual")]
        + [arm(a, 12, [0]) for a in ("pre_ln", "no_residual")]
    )
    ctx = rules.Context("t", runs, runs)
    assert rules.shared_deepest(ctx, "pre_ln", "no_residual") == 8
