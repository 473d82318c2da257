"""The frontier search (resnorm plan --study frontier): on every possible outcome of a
7-point grid it finds what the whole grid would, in fewer runs, and the report counts it."""

from __future__ import annotations

import math
import subprocess

import pandas as pd
import pytest

from resnorm.report import plan_cli
from resnorm.report.analysis import frontier
from resnorm.report.analysis.frontier_bar import Bar
from resnorm.report.frontier_search import commands, next_index, plan

N = 7
GRID = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
BARS = {"digits": Bar(reference="pre_ln", reference_score=0.9, reference_lr=1e-2)}


def outcomes() -> list[tuple[str, list[bool]]]:
    """Every grid outcome the rule allows: too-small LRs fail, then one run of successes,
    then failures; plus nothing succeeding anywhere."""
    out = [("none", [False] * N)]
    for a in range(N):
        for b in range(a, N):
            out.append((f"{a}..{b}", [a <= i <= b for i in range(N)]))
    return out


def search(truth: list[bool], start: int) -> dict[int, bool]:
    tested: dict[int, bool] = {}
    while (i := next_index(tested, N, start)) is not None:
        assert i not in tested, (tested, i)  # never the same LR twice
        tested[i] = truth[i]
    return tested


@pytest.mark.parametrize("start", [4, 3, 0, 6])
@pytest.mark.parametrize(("name", "truth"), outcomes(), ids=[n for n, _ in outcomes()])
def test_the_search_finds_the_grids_frontier_and_the_report_counts_the_seed(start, name, truth):
    tested = search(truth, start)
    whole = frontier.max_stable_lr(GRID, truth)
    lrs, ok = [GRID[i] for i in sorted(tested)], [tested[i] for i in sorted(tested)]
    found = frontier.max_stable_lr(lrs, ok)
    assert found == whole or (math.isnan(found) and math.isnan(whole)), (name, tested)
    assert len(tested) <= N
    counts = len(lrs) >= frontier.MIN_GRID or frontier.bracketed(
        dict(zip(lrs, ok, strict=True)), GRID, found
    )
    assert counts, (name, tested)


def test_from_the_pilots_best_lr_the_search_runs_far_fewer_runs_than_the_grid():
    runs = [len(search(truth, 4)) for _, truth in outcomes()]
    # frontier at the start or above: at most 3 runs; each step down adds one
    assert max(len(search([i <= 4 for i in range(N)], 4)), len(search([True] * N, 4))) <= 3
    assert sum(runs) / len(runs) < 0.7 * N, runs


def test_next_index_by_hand():
    assert next_index({}, N, 4) == 4
    assert next_index({4: True}, N, 4) == 5  # up by bisection between 4 and past the top
    assert next_index({4: True, 5: True}, N, 4) == 6
    assert next_index({4: True, 5: False}, N, 4) is None  # bracketed
    assert next_index({4: True, 5: True, 6: True}, N, 4) is None  # top of the grid
    assert next_index({4: False}, N, 4) == 3  # down one step, not by bisection
    assert next_index({4: False, 3: False, 2: True}, N, 4) is None
    assert next_index({i: False for i in range(5)}, N, 4) == 5  # start too small? try above
    assert next_index({1: True, 5: False}, N, 1) == 3  # bisection between 1 and 5


def run(arch, lr, seed, value, status="completed", depth=2) -> dict:
    return {"task": "digits", "arch": arch, "depth": float(depth), "lr": lr,
            "seed": float(seed), "status": status, "usable": status in ("completed", "diverged"),
            "diverged": status == "diverged", "value": value, "metric": "test/acc",
            "chance": 0.1}  # fmt: skip


PARAMS = {"task": "digits", "variant": "a,b", "model.depth": "2", "seed": "0,1",
          "optim.lr": "1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1"}  # fmt: skip


def test_plan_reads_successes_against_the_bar_and_reruns_what_did_not_finish():
    runs = pd.DataFrame([
        run("a", 1e-2, 0, 0.9), run("a", 3e-2, 0, 0.1, "diverged"),  # bracketed
        run("a", 1e-2, 1, 0.9),  # up next
        run("b", 1e-2, 0, 0.3),  # below the bar 0.5: down next
        run("b", 1e-2, 1, 0.9, "failed"),  # crashed: not a result, the start again
    ])  # fmt: skip
    got = {(p.variant, p.seed): p.next_lr for p in plan(runs, PARAMS, BARS)}
    assert got == {("a", 0): None, ("a", 1): "3e-2", ("b", 0): "3e-3", ("b", 1): "1e-2"}
    lines = commands(plan(runs, PARAMS, BARS), "frontier")
    assert lines == [
        "resnorm train -m study=frontier task=digits variant=b model.depth=2 optim.lr=3e-3 seed=0",
        "resnorm train -m study=frontier task=digits variant=b model.depth=2 optim.lr=1e-2 seed=1",
        "resnorm train -m study=frontier task=digits variant=a model.depth=2 optim.lr=3e-2 seed=1",
    ]
    # the report gives seed 0 of a its frontier from two runs: 1e-2, bracketed by 3e-2
    table = frontier.frontier_table(runs, BARS)
    assert table.loc[table["arch"] == "a", "max_lr_median"].tolist() == [1e-2]


def test_the_first_round_starts_every_seed_at_the_pilots_best_lr(capsys):
    assert plan_cli.main(["--study", "frontier"]) == 0
    out = capsys.readouterr().out
    assert "runs: 0 done, 81 next; the whole grid: 567" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("resnorm train")]
    assert len(lines) == 3 and all("optim.lr=1e-2 seed=0,1,2" in ln for ln in lines)
    assert (
        "variant=admin,deepnorm,dyt_pre,no_norm,peri_ln,post_ln,pre_ln,qk_norm,rezero" in lines[0]
    )


def test_on_a_failure_between_two_successes_the_search_may_report_the_upper_run():
    """Over all 2^7 outcomes: the search never reports a lower frontier than the grid's, and
    differs only where a failure lies between two successes (the grid rule stops at the
    first failure above the first success; the search, coming from above, does not see it)."""
    differ = 0
    for mask in range(2**N):
        truth = [bool(mask >> i & 1) for i in range(N)]
        tested = search(truth, 4)
        lrs = sorted(tested)
        found = frontier.max_stable_lr([GRID[i] for i in lrs], [tested[i] for i in lrs])
        whole = frontier.max_stable_lr(GRID, truth)
        rank = [-math.inf if math.isnan(v) else v for v in (found, whole)]
        assert rank[0] >= rank[1], truth
        ok = [i for i in range(N) if truth[i]]
        if rank[0] != rank[1]:
            differ += 1
            assert ok != list(range(ok[0], ok[-1] + 1)), truth  # never on one run of successes
    assert 0 < differ < 2**N


def test_run_into_runs_each_round_then_plans_again_until_nothing_is_left(tmp_path, monkeypatch):
    rounds = [["resnorm train -m study=frontier optim.lr=1e-2 seed=0"],
              ["resnorm train -m study=frontier optim.lr=3e-2 seed=0"], []]  # fmt: skip
    seen_sources, ran = [], []

    def fake_plan(args, sources):
        seen_sources.append(list(sources))
        return rounds.pop(0)

    def fake_run(cmd, **kw):
        ran.append(cmd[3:])
        (tmp_path / "sweep").mkdir(exist_ok=True)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(plan_cli, "plan_lines", fake_plan)
    monkeypatch.setattr(plan_cli.subprocess, "run", fake_run)
    sweep = str(tmp_path / "sweep")
    assert plan_cli.main(["--study", "frontier", "--run-into", sweep]) == 0
    into = f"hydra.sweep.dir={sweep}"
    assert ran == [["train", "-m", "study=frontier", f"optim.lr={lr}", "seed=0", into]
                   for lr in ("1e-2", "3e-2")]  # fmt: skip
    assert seen_sources == [[], [sweep], [sweep]]  # later rounds plan from what ran


def test_run_into_stops_when_a_round_asks_for_the_same_runs_again(tmp_path, monkeypatch, capsys):
    line = "resnorm train -m study=frontier optim.lr=1e-2 seed=0"
    monkeypatch.setattr(plan_cli, "plan_lines", lambda args, sources: [line])
    monkeypatch.setattr(plan_cli.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0))  # fmt: skip
    assert plan_cli.main(["--study", "frontier", "--run-into", str(tmp_path / "s")]) == 1
    assert "the last round's runs are still needed" in capsys.readouterr().err
    monkeypatch.setattr(plan_cli.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 3))  # fmt: skip
    assert plan_cli.main(["--study", "frontier", "--run-into", str(tmp_path / "s")]) == 3
