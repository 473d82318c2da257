"""Adaptive seeds (claims.adaptive, `resnorm plan`): the schedule, the stopping rule on a
synthetic study, and the error rate and saving of Bonferroni over the looks, measured."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from resnorm.report.analysis.stats import mean_ci
from resnorm.report.claims.adaptive import Schedule, commands, declared_looks, plan
from resnorm.report.claims.finding import Finding
from resnorm.report.claims.registry import claim
from resnorm.report.claims.verdicts import (
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    SUPPORTED,
    WORSE,
    Part,
    resolve,
)  # fmt: skip
from test_report import resnorm


def test_schedule_looks_and_rounds():
    s = Schedule(4, 4, 16)
    assert s.looks == 4 and s.alpha == pytest.approx(0.0125)
    assert list(s.next_seeds(0)) == [0, 1, 2, 3]
    assert list(s.next_seeds(2)) == [2, 3]  # a first round cut short is completed first
    assert list(s.next_seeds(4)) == [4, 5, 6, 7] and list(s.next_seeds(16)) == []
    with pytest.raises(ValueError, match="multiple of step"):
        Schedule(4, 5, 16)
    assert Schedule.of(None) is None and Schedule.of({"start": 2, "step": 2, "max": 8}).looks == 4


def _runs(cells, task: str, seeds) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "task": task,
                "arch": c.arch,
                "depth": c.depth,
                "lr": c.lr,
                "warmup_steps": c.warmup,
                "heads": c.heads,
                "dim": c.dim,
                "seed": s,
            }
            for c in cells
            for s in seeds
        ]  # fmt: skip
    )


def _finding(key: str, task: str, verdict: str) -> Finding:
    f = Finding(key, "", "", task, "")
    f.verdict = verdict
    return f


def test_decided_claims_stop_their_cells_and_open_ones_get_the_next_round():
    task, s = "image_digits", Schedule(4, 4, 16)
    b, c = claim("b").needs, claim("c").needs
    runs = _runs(sorted({*b, *c}), task, range(4))
    found = [_finding("b", task, SUPPORTED), _finding("c", task, INCONCLUSIVE)]
    plans = {p.cell.case: p for p in plan(found, runs, [task], ["b", "c"], s)}
    # only (b) needs these: it is decided, they stop
    assert list(plans["post_ln_w0"].seeds) == [] and "decided" in plans["post_ln_w0"].why
    # (c) is open: its cells (pre_ln is (b)'s too) get seeds 4-7
    for cell in c:
        assert list(plans[cell.case].seeds) == [4, 5, 6, 7], plans[cell.case]
        assert "(c) inconclusive" in plans[cell.case].why
    [line] = commands(list(plans.values()), "findings")
    assert line == (
        "resnorm train -m study=findings task=image_digits "
        "+case=no_residual,no_residual_d2,pre_ln,pre_ln_d2 seed=4,5,6,7"
    )
    # at the last look an open claim stops too; a task without runs starts its first round
    runs16 = _runs(c, task, range(16))
    assert all(not p.seeds for p in plan(found, runs16, [task], ["c"], s))
    fresh = plan([], runs.iloc[0:0], ["speech_synth"], ["b"], s)
    assert {p.cell.case for p in fresh} == {x.case for x in b}
    assert all(list(p.seeds) == [0, 1, 2, 3] for p in fresh)
    # a gap in the seeds is a run still to come: the cell has 2 seeds done, not 3
    gappy = _runs(c, task, [0, 1, 3])
    assert {p.done for p in plan(found, gappy, [task], ["c"], s)} == {2}
    # a run still training is not done; a task the runs lack has none done
    running = _runs(c, task, range(4)).assign(status="completed")
    running.loc[running["seed"] == 3, "status"] = "running"
    assert {p.done for p in plan(found, running, [task], ["c"], s)} == {3}
    assert {p.done for p in plan(found, running, ["nlp_charlm"], ["c"], s)} == {0}


def test_declared_looks_come_from_the_runs_study_config():
    assert declared_looks(pd.DataFrame({"x": [1]})) == 1
    assert declared_looks(pd.DataFrame({"study_looks": [math.nan, 4.0, 4.0]})) == 4


REPS = 4000


def _sequential(rng, delta: float, m: float, s: Schedule | None, alpha_per_look: float):
    """One adaptive study of one part: per-seed differences N(delta, 1) looked at after each
    round; stops at the first decided look. Returns (outcome, seeds used)."""
    x = rng.normal(delta, 1.0, 16)
    looks = range(s.start, s.max + 1, s.step) if s else [8]
    outcome, n = INCONCLUSIVE, 0
    for n in looks:
        part = Part("d", mean_ci(x[:n]), n, BETTER, m)
        resolve([part], alpha_per_look)
        outcome = part.outcome
        if outcome != INCONCLUSIVE:
            break
    return outcome, n


@pytest.mark.parametrize(
    ("delta", "wrong"),
    [(0.0, {BETTER, WORSE}), (1.0, {EQUIVALENT, WORSE}), (-1.0, {EQUIVALENT, BETTER})],
)
def test_bonferroni_over_looks_keeps_the_error_rate(delta, wrong):
    """A false decision at any look happens at most α of the time with α/K per look; at the
    unadjusted α it does not (the peeking that adaptive stopping must pay for)."""
    s, m = Schedule(4, 4, 16), 1.0  # the margin equals the noise sd: δ = ±m is the edge
    slack = 2.33 * math.sqrt(0.05 * 0.95 / REPS)
    rates = {}
    for name, alpha in (("bonferroni", s.alpha), ("naive", 0.05)):
        rng = np.random.default_rng(7)
        out = [_sequential(rng, delta, m, s, alpha)[0] for _ in range(REPS)]
        rates[name] = sum(o in wrong for o in out) / REPS
    print(f"delta {delta}: false decisions, α/4 per look {rates['bonferroni']:.4f}, "
          f"α per look {rates['naive']:.4f}")  # fmt: skip
    assert rates["bonferroni"] <= 0.05 + slack
    if delta == 0.0:
        assert rates["naive"] > rates["bonferroni"]


def test_adaptive_saves_seeds_where_the_answer_is_clear():
    """Against a fixed 8 seeds: mean seeds used and how often each design decides, for a
    clear effect (3 margins), a null (δ = 0: 'equivalent' is right) and an edge effect."""
    s = Schedule(4, 4, 16)
    for delta, expect in ((3.0, BETTER), (0.0, EQUIVALENT)):
        rng = np.random.default_rng(11)
        adaptive = [_sequential(rng, delta, 1.0, s, s.alpha) for _ in range(2000)]
        rng = np.random.default_rng(11)
        fixed = [_sequential(rng, delta, 1.0, None, 0.05) for _ in range(2000)]
        mean_seeds = float(np.mean([n for _, n in adaptive]))
        power = {k: sum(o == expect for o, _ in v) / 2000 for k, v in
                 (("adaptive", adaptive), ("fixed 8", fixed))}  # fmt: skip
        print(f"delta {delta}: adaptive uses {mean_seeds:.2f} seeds (fixed: 8), decides "
              f"{expect} in {power['adaptive']:.3f} (fixed 8: {power['fixed 8']:.3f})")  # fmt: skip
        if delta == 3.0:
            assert mean_seeds < 8 and power["adaptive"] >= power["fixed 8"] - 0.02
        else:  # equivalence needs more seeds than 8 give: adaptive goes on and finds it
            assert power["adaptive"] > power["fixed 8"]


def test_plan_cli_prints_the_first_round(tmp_path):
    res = resnorm("plan", "--study", "findings", "--task", "speech_synth", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "4 looks, each at α = 0.05/4 = 0.0125" in res.stdout
    assert "study=findings task=speech_synth +case=" in res.stdout and "seed=0,1,2,3" in res.stdout
    res = resnorm("plan", "--study", "nosuch", cwd=tmp_path)
    assert res.returncode == 2 and "no study preset 'nosuch'" in res.stderr
