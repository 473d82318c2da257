"""Claims (o), (p), (q) on synthetic run frames whose truth is known: (o) per depth, with
runs that never reach the target right-censored at the step budget; (p) at the stated lr
and matched training loss; (q) on the inputs the sublayers are fed, not the residual
stream; and the forward probe that records those inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from resnorm.report.analysis.probes import add_probe_columns, sublayer_input_drift
from resnorm.report.claims.article_convergence import logrank_p, restricted_steps
from resnorm.report.claims.article_training import CLAIM_O, CLAIM_P, CLAIM_Q
from resnorm.report.claims.rules import Context, finish
from resnorm.report.claims.verdicts import (
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    SUPPORTED,
    resolve,
)

SEEDS, BUDGET = 8, 600
STEPS = np.arange(50, BUDGET + 1, 50)


def _curve(reach: float | None) -> pd.DataFrame:
    """A validation curve at 0.2 that jumps to 0.9 at the first logged step >= ``reach``
    (None: never; it stays at 0.2). The claim's target is then 0.5, reached at that step."""
    reach = math.inf if reach is None else reach
    return pd.DataFrame({"step": STEPS, "val/acc": np.where(reach <= STEPS, 0.9, 0.2)})


def _runs(arch: str, depth: int = 8, lr: float = 1e-3, seeds: int = SEEDS, **cols):
    """One row per seed with every column the claims read; ``cols`` are scalars or per-seed
    arrays (a ``reach`` array becomes each run's validation curve)."""
    reach = cols.pop("reach", [100] * seeds)
    frame = pd.DataFrame(
        {
            "task": "t",
            "arch": arch,
            "depth": depth,
            "dim": 64,
            "heads": 4,
            "lr": lr,
            "warmup_steps": 50,
            "max_steps": BUDGET,
            "seed": np.arange(seeds),
            "value": 0.9,
            "metric": "test/acc",
            "chance": 0.1,
            "diverged": False,
            "usable": True,
            "status": "completed",
            "val_curve": [_curve(r) for r in reach],
        }
    )
    for k, v in cols.items():
        frame[k] = v
    return frame


def _judge(claim, *frames: pd.DataFrame):
    runs = pd.concat(frames, ignore_index=True)
    f = claim.test(Context("t", runs, runs))
    resolve(f.parts)
    return finish(f)


def _noise(seed: int, sd: float = 10.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sd, SEEDS)


# ---- (o) residual connections speed up convergence ----

ON = [100, 150, 100, 100, 50, 100, 150, 100]  # pre_ln's steps to target per seed


def test_a_run_that_never_reaches_the_target_is_censored_at_its_budget():
    runs = _runs("no_residual", reach=[None, 200, 600, None, 100, 100, 100, 100])
    out = restricted_steps(runs, 0.8, higher=True)
    assert out["reached"].tolist() == [False, True, True, False, True, True, True, True]
    # min(T, τ): the budget itself, never budget + 1 or any other made-up steps to target
    assert out["restricted"].tolist() == [600, 200, 600, 600, 100, 100, 100, 100]
    assert out["restricted"].max() == BUDGET


def test_speedup_at_depth_8_but_not_at_depth_2_is_not_supported():
    """The old rule averaged both depths (and counted never-reached as 601): a large gap at
    depth 8 and none at depth 2 averaged to 'better'. Per depth, depth 2 is equivalent."""
    frames = (
        _runs("pre_ln", 8, reach=ON),
        _runs("no_residual", 8, reach=[None] * 6 + [450, 500]),
        _runs("pre_ln", 2, reach=ON),
        _runs("no_residual", 2, reach=[100, 100, 150, 100, 100, 50, 150, 100]),
    )
    f = _judge(CLAIM_O, *frames)
    assert [p.outcome for p in f.parts] == [BETTER, EQUIVALENT], [p.text() for p in f.parts]
    assert f.parts[0].name.startswith("depth 8") and f.parts[1].name.startswith("depth 2")
    assert f.verdict == NOT_SUPPORTED
    # headline: depth 8's RMST difference; six runs censored at 600 count 600 each
    assert f.effect == pytest.approx(np.mean([600] * 6 + [450, 500]) - np.mean(ON))
    assert any("no_residual 2/8 (the others censored at τ)" in d for d in f.details)
    assert any("log-rank p=" in d for d in f.details)


def test_speedup_at_both_depths_is_supported_and_other_lrs_do_not_dilute_it():
    """At lr 1e-1 and 1e-4 (other claims' cells) both arms never reach the target: the old
    rule averaged those zero differences in; the claim's cells are lr 1e-3 only."""
    off = [300, 350, 300, 250, 300, 350, 300, 300]
    frames = [
        _runs(a, d, reach=r) for d in (8, 2) for a, r in (("pre_ln", ON), ("no_residual", off))
    ]
    for lr in (1e-4, 1e-1):
        frames += [_runs(a, 8, lr, reach=[None] * SEEDS) for a in ("pre_ln", "no_residual")]
    f = _judge(CLAIM_O, *frames)
    assert [p.outcome for p in f.parts] == [BETTER, BETTER]
    assert f.verdict == SUPPORTED and f.effect == pytest.approx(np.mean(off) - np.mean(ON))


def test_the_log_rank_test_sees_censored_runs():
    on = restricted_steps(_runs("pre_ln", reach=[100] * SEEDS), 0.8, True)
    off = restricted_steps(_runs("no_residual", reach=[None] * SEEDS), 0.8, True)
    assert logrank_p(off, on) < 0.01
    assert math.isnan(logrank_p(off, off))  # no run reaches the target: nothing to compare


# ---- (p) LayerNorm reduces overfitting ----


def _gap_arm(arch: str, lr: float, gap: float, train: float, seed: int, **cols):
    noise = _noise(seed, 0.005)
    return _runs(arch, lr=lr, gen_gap=gap + noise, final_train_loss=train + noise / 2, **cols)


def test_an_overfitting_gap_at_an_undertrained_lr_does_not_count():
    """At lr 1e-4 both arms are undertrained and no_norm's gap is 0.5 larger; at the stated
    lr 1e-3 the gaps are equal at matched training loss. The old rule averaged the lrs into
    'better'; now: equivalent at lr 1e-3, not supported."""
    frames = (
        _gap_arm("pre_ln", 1e-3, 0.10, 0.20, 1),
        _gap_arm("no_norm", 1e-3, 0.10, 0.21, 2),
        _gap_arm("pre_ln", 1e-4, 0.10, 1.5, 3),
        _gap_arm("no_norm", 1e-4, 0.60, 1.6, 4),
    )
    f = _judge(CLAIM_P, *frames)
    assert f.parts[0].outcome == EQUIVALENT and f.verdict == NOT_SUPPORTED
    assert f.effect == pytest.approx(0.0, abs=0.01)


def test_a_gap_difference_at_unmatched_training_loss_is_not_testable():
    """no_norm's gap is larger, but its training loss is 0.1 lower: the gap difference may
    be the difference in fit. Not testable, with the numbers (the old rule: supported)."""
    frames = (_gap_arm("pre_ln", 1e-3, 0.10, 0.30, 1), _gap_arm("no_norm", 1e-3, 0.20, 0.20, 2))
    f = _judge(CLAIM_P, *frames)
    assert f.parts[0].outcome == BETTER  # what the old rule stopped at
    assert f.verdict == NOT_TESTABLE
    assert "not at matched training loss at lr 0.001" in f.details[0]
    assert "-0.1" in f.details[0]


def test_a_larger_gap_at_matched_training_loss_is_supported_when_it_trains():
    values = np.full(SEEDS, 0.9)
    values[0] = 0.1  # no_norm seed 0 did not train: its huge gap is left out
    gap = 0.10 + _noise(2, 0.005)
    gap[0] = 3.0
    frames = (
        _gap_arm("pre_ln", 1e-3, 0.10, 0.20, 1),
        _runs("no_norm", gen_gap=gap, final_train_loss=0.205, value=values),
    )
    frames[1]["gen_gap"] += 0.05
    f = _judge(CLAIM_P, *frames)
    assert f.parts[0].outcome == BETTER and f.verdict == SUPPORTED
    assert f.n == 7 and f.effect == pytest.approx(0.05, abs=0.01)
    assert any(d.startswith("failures no_norm 1/8 failed") for d in f.details)


# ---- (q) LayerNorm keeps the distribution of the layers' inputs stable ----


def _drift_arm(arch: str, fed: float, stream: float, seed: int) -> pd.DataFrame:
    noise = _noise(seed, 0.01)
    return _runs(arch, sublayer_input_drift=fed + noise, rms_drift=stream + noise)


def test_drift_of_the_residual_stream_alone_does_not_support_it():
    """no_norm's residual stream drifts more, but what its sublayers are fed drifts as much
    as pre_ln's: the old rule (stream drift) said supported; the inputs say equivalent."""
    f = _judge(CLAIM_Q, _drift_arm("pre_ln", 0.05, 0.1, 1), _drift_arm("no_norm", 0.05, 0.8, 2))
    assert f.parts[0].outcome == EQUIVALENT and f.verdict == NOT_SUPPORTED
    assert f.parts[0].threshold == pytest.approx(0.1)
    assert any(d.startswith("residual-stream drift no_norm − pre_ln: 0.69") for d in f.details)


def test_drift_of_the_sublayers_inputs_supports_it():
    f = _judge(CLAIM_Q, _drift_arm("pre_ln", 0.05, 0.5, 1), _drift_arm("no_norm", 0.6, 0.5, 2))
    assert f.parts[0].outcome == BETTER and f.verdict == SUPPORTED
    assert f.effect == pytest.approx(0.55, abs=0.02)


def test_runs_without_the_sublayer_probe_are_named_missing():
    frames = [_runs(a, rms_drift=0.3) for a in ("pre_ln", "no_norm")]
    f = _judge(CLAIM_Q, *frames)
    assert f.verdict == INCONCLUSIVE
    assert any("sublayer-input probe" in m for m in f.missing)


def test_sublayer_input_drift_column():
    init = {"sublayer_input_rms": [[1.0, 1.0], [1.0, 1.0]]}
    final = {"sublayer_input_rms": [[math.e, 1.0], [1.0, 1 / math.e]]}
    assert sublayer_input_drift(init, final) == pytest.approx(0.5)
    assert math.isnan(sublayer_input_drift({"residual_rms": [1.0]}, final))  # an older run
    assert math.isnan(sublayer_input_drift(init, {"sublayer_input_rms": [[1.0, 1.0]]}))
    runs = pd.DataFrame(
        {
            "init_probe": [init, init],
            "final_probe": [final, final],
            "diverged": [False, True],
            "test_loss": [1.0, 1.0],
        }
    )
    out = add_probe_columns(runs)["sublayer_input_drift"]
    assert out[0] == pytest.approx(0.5) and math.isnan(out[1])  # diverged: left out


# ---- the forward probe records what each sublayer is fed ----


@pytest.mark.parametrize("position", ["pre", "post", "none"])
def test_the_probe_records_the_post_norm_input_of_each_sublayer(position):
    torch = pytest.importorskip("torch")
    from resnorm.models import Encoder
    from resnorm.stability import forward_probe

    torch.manual_seed(0)
    x = 3.0 * torch.randn(4, 10, 32)
    record = forward_probe(Encoder(32, 3, 4, norm_position=position), x)
    fed = np.asarray(record["sublayer_input_rms"])
    assert fed.shape == (3, 2)  # per layer: [attention, MLP]
    if position == "pre":  # a fresh LayerNorm feeds each sublayer unit RMS
        assert fed == pytest.approx(1.0, abs=1e-3)
        assert min(record["residual_rms"]) > 2.5  # while the stream keeps the input's scale
    elif position == "post":  # the first attention sees the raw input; the rest are normed
        assert fed[0, 0] == pytest.approx(3.0, rel=0.05)
        assert fed.flatten()[1:] == pytest.approx(1.0, abs=1e-3)
    else:  # no norm: each sublayer is fed the stream itself
        assert fed[0, 0] == pytest.approx(float(x.square().mean().sqrt()), rel=1e-5)
        assert fed[1, 0] == pytest.approx(record["residual_rms"][0], rel=1e-5)
