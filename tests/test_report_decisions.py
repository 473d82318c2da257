"""One decision per part from one interval, Holm over the study's primary claims, and
failures as their own outcome (exact counts, Clopper–Pearson, Fisher's exact test)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from resnorm.report.analysis import failures, stats
from resnorm.report.claims import catalog, verdicts
from resnorm.report.claims.rules import Context, compare


def _part(values, expect=verdicts.BETTER, m=0.01, primary=True):
    part = verdicts.Part("x", stats.mean_ci(values), len(values), expect, m, primary=primary)
    verdicts.resolve([part])
    return part


def test_a_part_has_one_p_value_twice_its_one_sided_p_in_the_observed_direction():
    x = [0.05, 0.03, 0.06, 0.02, 0.04]
    part = _part(x)
    one_sided = sps.ttest_1samp(x, 0.0, alternative="greater").pvalue
    assert part.candidate() == verdicts.BETTER
    assert part.p == pytest.approx(2 * one_sided) and part.p_adj == part.p
    # the same decision from the (1 - α) interval: above 0 exactly when 2p <= α
    est = stats.mean_ci(x)
    t = sps.t.ppf(1 - 0.05 / 2, est.df)
    assert (est.mean - t * est.se > 0) == (part.p <= 0.05)


def test_the_decision_rule_is_valid_at_every_true_difference():
    """At δ = 0, m/2 and m the false declarations of one part stay below α (a (1 − 2α)
    interval would give 2α at δ = 0: both directions false)."""
    rng = np.random.default_rng(0)
    m, n, sims = 0.02, 8, 4000
    for delta in (0.0, m / 2, m):
        wrong = {verdicts.BETTER, verdicts.WORSE} if delta == 0 else {verdicts.WORSE}
        if delta >= m:
            wrong.add(verdicts.EQUIVALENT)
        bad = 0
        for _ in range(sims):
            part = _part(rng.normal(delta, 0.02, n), verdicts.BETTER, m)
            bad += part.outcome in wrong
        assert bad / sims <= 0.05 + 2.33 * math.sqrt(0.05 * 0.95 / sims), (delta, bad / sims)


def test_only_primary_parts_form_the_holm_family():
    x = [0.05, 0.03, 0.06, 0.02, 0.04]
    a, b, c = (verdicts.Part(k, stats.mean_ci(x), 5, verdicts.BETTER, 0.01) for k in "abc")
    c.primary = False
    assert verdicts.resolve([a, b, c]) == 2
    assert a.p_adj == pytest.approx(2 * a.p) and c.p_adj == c.p
    assert "exploratory" in c.text() and "p_Holm" in a.text()


def test_the_runs_study_preset_declares_the_primary_claims():
    df = pd.DataFrame({"study_primary": ["b,c,i", None, "b,c,i"]})
    assert catalog.declared_primary(df) == {"b", "c", "i"}
    assert catalog.declared_primary(pd.DataFrame({"x": [1]})) is None


def test_report_primary_names_claims():
    from resnorm.report.cli import parse_primary
    from resnorm.report.sources.classify import ReportError

    assert parse_primary("b, c,(i)") == ["b", "c", "i"] and parse_primary(None) is None
    with pytest.raises(ReportError, match="claim keys"):
        parse_primary("b,zz")


def test_clopper_pearson_bounds_what_n_seeds_can_exclude():
    low, high = failures.exact_ci(0, 8)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 8))  # 36.9%
    ci = sps.binomtest(2, 8).proportion_ci(method="exact")
    assert failures.exact_ci(2, 8) == pytest.approx((ci.low, ci.high))


def _runs(arch, values, diverged=None):
    n = len(values)
    return pd.DataFrame(
        {
            "arch": arch,
            "seed": np.arange(n),
            "depth": 8,
            "dim": 64,
            "heads": 4,
            "lr": 1e-3,
            "warmup_steps": 50,
            "max_steps": 200,
            "value": values,
            "metric": "test/acc",
            "chance": 0.1,
            "diverged": diverged if diverged is not None else [False] * n,
        }
    )


def test_a_run_fails_when_it_diverges_or_stays_near_chance():
    runs = _runs("x", [0.9, 0.2, 0.8, 0.9], [False, False, True, False])
    assert failures.failed(runs).tolist() == [False, True, True, False]
    assert failures.count(runs) == failures.Count(2, 4)
    bpc = runs.assign(metric="test/bpc", chance=6.0, value=[2.0, 5.5, 2.0, 2.0])
    assert failures.failed(bpc).tolist() == [False, True, True, False]


def test_scores_are_compared_when_both_arms_train_with_failures_alongside():
    a = _runs("post_ln_w0", [0.1, 0.91, 0.1, 0.9, 0.92, 0.9, 0.91, 0.9])
    b = _runs("post_ln", [0.9, 0.9, 0.91, 0.89, 0.9, 0.92, 0.9, 0.9])
    est, seeds = compare(a, b, "value")
    assert seeds == 6 and abs(est.mean) < 0.02  # the two failed seeds left out
    assert "post_ln_w0 2/8 failed" in est.note and "post_ln 0/8 failed" in est.note
    every, seeds = compare(a, b, "value", when_trained=False)
    assert seeds == 8 and every.mean < -0.15


def test_failure_counts_are_tested_exactly():
    ctx = Context("t", _runs("x", [0.9] * 8), _runs("x", [0.9] * 8))
    never = _runs("a", [0.9] * 8)
    often = _runs("b", [0.1] * 6 + [0.9] * 2)
    part = ctx.failure_part("failures", never, often)
    verdicts.resolve([part])
    want = sps.fisher_exact([[0, 8], [6, 2]], alternative="less").pvalue
    assert part.p == pytest.approx(2 * want) and part.outcome == verdicts.BETTER
    assert "0/8 failed" in part.text() and "6/8 failed" in part.text()
    rare = ctx.failure_part("failures", never, _runs("b", [0.1] * 2 + [0.9] * 6))
    verdicts.resolve([rare])  # 0/8 vs 2/8: 8 seeds cannot tell
    assert rare.outcome == verdicts.INCONCLUSIVE and rare.supports()
    worse = ctx.failure_part("failures", often, never)
    verdicts.resolve([worse])
    assert worse.outcome == verdicts.WORSE and worse.contradicts()
