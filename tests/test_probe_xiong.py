"""`resnorm probe xiong`: the W² gradient it reports is the task loss's gradient at init.

Real code paths on the real embedded data (nlp_charlm), at a tiny width and depth.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from resnorm.probes.cli import main
from resnorm.probes.xiong import (
    build_at_init,
    compose_config,
    init_profile,
    load_data,
    train_batches,
    w2_grad_norms,
    w2_params,
)
from resnorm.probes.xiong_run import depth_exponent

DIM, DEPTH = 32, 3


@pytest.fixture(scope="module")
def dm():
    return load_data(compose_config("post_ln", DIM, DEPTH, "relu"))


def direct_w2_grad_norms(model, batch, vocab: int) -> list[float]:
    """One plain backward of the token-level cross-entropy; W² read off each block."""
    x, y = batch
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1)).backward()
    norms = [float(b.ffn.fn.fc2.weight.grad.norm()) for b in model.encoder.blocks]
    model.zero_grad(set_to_none=True)
    return norms


@pytest.mark.parametrize("variant", ["post_ln", "pre_ln"])
def test_probe_gradient_is_the_backward_gradient_of_the_task_loss(dm, variant):
    cfg = compose_config(variant, DIM, DEPTH, "relu", seed=1)
    model, loss_fn = build_at_init(cfg, dm)
    params = w2_params(model)
    assert len(params) == DEPTH and all(p.shape == (1, DIM, 4 * DIM) for p in params)
    assert params[-1] is model.encoder.blocks[-1].ffn.fn.fc2.weight
    batch = train_batches(dm, 1, 1)[0]
    probed = w2_grad_norms(model, loss_fn, batch)
    assert all(p.grad is None for p in model.parameters())  # the probe leaves .grad alone
    direct = direct_w2_grad_norms(model, batch, dm.spec.vocab_size)
    assert probed == pytest.approx(direct, rel=1e-5)
    assert min(direct) > 0 and len(set(direct)) == DEPTH  # real, distinct per-layer values


def test_profile_is_taken_at_init_and_averaged_over_batches(dm):
    cfg = compose_config("post_ln", DIM, DEPTH, "relu", seed=2)
    batches = train_batches(dm, 2, 2)
    assert not torch.equal(batches[0][0], batches[1][0])
    model, loss_fn = build_at_init(cfg, dm)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for b in batches:
        w2_grad_norms(model, loss_fn, b)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # the same seed rebuilds the same init (the run's own), so the profile is at init
    again, _ = build_at_init(cfg, dm)
    assert all(torch.equal(before[k], v) for k, v in again.state_dict().items())
    per_batch = [direct_w2_grad_norms(again, b, dm.spec.vocab_size) for b in batches]
    expected = [sum(col) / len(col) for col in zip(*per_batch, strict=True)]
    assert init_profile(cfg, dm, batches) == pytest.approx(expected, rel=1e-5)
    assert per_batch[0] != pytest.approx(per_batch[1], rel=1e-3)  # two batches really differ


def test_depth_exponent_recovers_a_power_law():
    depths = [2, 6, 12, 24]
    assert depth_exponent(depths, [3.0 * d**-0.5 for d in depths]) == pytest.approx(-0.5)
    assert depth_exponent(depths, [1.7] * 4) == pytest.approx(0.0, abs=1e-12)


def test_cli_writes_json_and_markdown_with_the_measured_values(dm, tmp_path, capsys):
    out = tmp_path / "xiong"
    argv = ["xiong", "--out", str(out), "--dim", str(DIM), "--depths", "2,3",
            "--layers", str(DEPTH), "--batches", "2", "--seeds", "1"]  # fmt: skip
    assert main(argv) == 0
    assert "Theorem 1" in capsys.readouterr().out
    data = json.loads((out / "xiong.json").read_text())
    md = (out / "xiong.md").read_text()
    for key in ("settings", "seeds", "rules", "paper_setting", "theorem1", "embedded",
                "verdicts", "machine", "wall_s"):  # fmt: skip
        assert key in data
    assert data["seeds"] == [0] and data["settings"]["batches"] == 2
    paper = data["paper_setting"]
    assert (paper["dim"], paper["depth"], paper["activation"]) == (DIM, DEPTH, "relu")
    for v in ("post_ln", "pre_ln"):
        assert len(paper[v]["mean"]) == DEPTH and math.isfinite(paper[v]["slope"]["mean"])
        th = data["theorem1"][v]
        assert th["depths"] == [2, 3] and len(th["last_layer"]["mean"]) == 2
        assert th["last_layer"]["mean"][1] == paper[v]["mean"][-1]  # depth 3 is the paper's
        assert math.isfinite(th["exponent"]["mean"])
        assert len(data["embedded"][v]["mean"]) == data["embedded"]["depth"]
    assert len(data["verdicts"]) == 6 and all(isinstance(v["reproduces"], bool)
                                              for v in data["verdicts"])  # fmt: skip
    # the reported numbers are the task loss's gradients: seed 0, post_ln, first 2 batches
    model, _ = build_at_init(compose_config("post_ln", DIM, DEPTH, "relu", seed=0), dm)
    per_batch = [direct_w2_grad_norms(model, b, dm.spec.vocab_size)
                 for b in train_batches(dm, 0, 2)]  # fmt: skip
    expected = [sum(col) / 2 for col in zip(*per_batch, strict=True)]
    assert paper["post_ln"]["mean"] == pytest.approx(expected, rel=1e-5)
    assert "| ln-slope over 0..1" in md and "## Verdicts" in md


@pytest.mark.parametrize(
    "bad", [["--depths", "2,x"], ["--depths", "2,2"], ["--seeds", "0"], ["--dim", "30"]]
)
def test_cli_rejects_bad_options_before_measuring(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["xiong", "--out", str(tmp_path / "o"), *bad])
    assert exc.value.code == 2 and bad[0] in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
