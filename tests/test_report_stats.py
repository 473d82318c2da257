"""Statistics of the report against distributions whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from resnorm.report.analysis import lr_sensitivity, stats
from resnorm.report.claims import rules
from resnorm.report.figures.optuna_study import pareto_mask


def test_bootstrap_ci_covers_a_known_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_mean, trials = 3.0, 300
    hits = 0
    for i in range(trials):
        x = rng.normal(true_mean, 2.0, size=25)
        est = stats.mean_ci(x, n_resamples=2000, seed=i)
        hits += est.low <= true_mean <= est.high
    coverage = hits / trials
    # percentile bootstrap undercovers slightly at n=25; a broken CI lands far outside this
    assert 0.88 <= coverage <= 0.99, coverage


def test_ci_narrows_with_more_seeds_and_is_reproducible():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0, 1, 5), rng.normal(0, 1, 200)
    a, b = stats.mean_ci(small), stats.mean_ci(large)
    assert (a.high - a.low) > 2 * (b.high - b.low)
    assert stats.mean_ci(small) == stats.mean_ci(small)  # fixed RNG seed: same interval


def test_one_value_has_no_ci_and_cannot_support_a_finding():
    est = stats.mean_ci([0.9])
    assert est.n == 1 and est.low is None and est.high is None and not est.has_ci
    assert "no CI" in est.text()
    assert rules.directional(est, seeds=1) == rules.INCONCLUSIVE
    assert rules.equivalence(est, seeds=1, margin=1.0) == rules.INCONCLUSIVE
    assert stats.mean_ci([]).n == 0 and math.isnan(stats.mean_ci([math.nan]).mean)


def test_two_seeds_are_inconclusive_even_with_a_large_effect():
    est = stats.mean_ci([5.0, 5.1])
    assert est.has_ci and est.low > 0
    assert rules.directional(est, seeds=2) == rules.INCONCLUSIVE


def _runs(values: list[float], seeds: list[int], **fixed) -> pd.DataFrame:
    return pd.DataFrame(
        {"seed": seeds, "value": values, **{k: [v] * len(seeds) for k, v in fixed.items()}}
    )


def test_paired_difference_of_identical_inputs_is_exactly_zero():
    a = _runs([0.71, 0.64, 0.80], [0, 1, 2], depth=4)
    est, pairs = stats.difference(a, a.copy(), ["depth", "seed"], "value")
    assert est.paired and len(pairs) == 3
    assert est.mean == 0.0 and est.low == 0.0 and est.high == 0.0


def test_pairing_removes_seed_to_seed_variation():
    # seed effects are huge, the variant effect is a constant +0.01: only pairing sees it
    seed_effect = [0.2, 0.5, 0.9, 0.3, 0.7]
    a = _runs([s + 0.01 for s in seed_effect], [0, 1, 2, 3, 4])
    b = _runs(seed_effect, [0, 1, 2, 3, 4])
    paired, _ = stats.difference(a, b, ["seed"], "value")
    unpaired = stats.unpaired_difference(a["value"], b["value"])
    assert (
        paired.paired and paired.low == pytest.approx(0.01) and paired.high == pytest.approx(0.01)
    )
    assert rules.directional(paired, seeds=5) == rules.SUPPORTED
    assert unpaired.low < 0 < unpaired.high  # the same data, unpaired: cannot tell


def test_unpaired_difference_finds_a_known_shift():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 0.1, 12), rng.normal(0.0, 0.1, 12)
    est = stats.unpaired_difference(a, b)
    assert est.low > 0.8 and est.high < 1.2 and est.low <= 1.0 <= est.high


def test_equivalence_needs_the_whole_ci_inside_the_margin():
    tight = stats.mean_ci([0.001, -0.002, 0.0005, 0.0])
    wide = stats.mean_ci([0.05, -0.06, 0.04, -0.03])
    assert rules.equivalence(tight, seeds=4, margin=0.02) == rules.SUPPORTED
    assert rules.equivalence(wide, seeds=4, margin=0.02) == rules.NOT_SUPPORTED


def test_oriented_flips_bits_per_char_so_lower_is_better():
    est = stats.Estimate(-0.2, -0.3, -0.1, 3, True)  # bpc went down: better
    flipped = rules.oriented(est, -1)
    assert (flipped.mean, flipped.low, flipped.high) == (0.2, 0.1, 0.3)
    assert rules.directional(flipped, seeds=3) == rules.SUPPORTED


def test_combine_needs_every_part():
    s, n, i = rules.SUPPORTED, rules.NOT_SUPPORTED, rules.INCONCLUSIVE
    assert rules.combine([s, s]) == s
    assert rules.combine([s, i]) == i
    assert rules.combine([i, n]) == n


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
