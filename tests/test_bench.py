"""The benchmarks measure what they name, on tiny shapes."""

from __future__ import annotations

import pytest
import torch

from conftest import rounding_tol
from resnorm.bench import block, harness, mfu_run, optimizer, wait_policy
from resnorm.bench.mfu import train_step_flops
from resnorm.models import LanguageModel


def test_block_bench_compares_both_norm_positions():
    rows = block.run(dim=16, depth=1, heads=2, batch=2, seq=4, iters=2)
    assert [r["norm_position"] for r in rows] == ["pre", "post"]
    for r in rows:
        assert r["ours ms"] > 0 and r["torch ms"] > 0
        assert r["ours/torch"] == pytest.approx(r["ours ms"] / r["torch ms"])


def test_reference_encoder_has_the_same_parameter_count_as_ours():
    from resnorm.models import Encoder

    for pre in (True, False):
        ours = Encoder(32, 2, 4, 4, norm_position="pre" if pre else "post", activation="relu")
        theirs = block.torch_encoder(32, 2, 4, 4, pre)
        assert sum(p.numel() for p in ours.parameters()) == sum(
            p.numel() for p in theirs.parameters()
        )


def test_flop_count_matches_the_matmuls_of_a_forward_pass():
    """Count multiply-adds of every Linear and the attention products with a hook."""
    b, t, d, depth, vocab = 2, 8, 16, 3, 11
    model = LanguageModel(vocab, t, dim=d, depth=depth, heads=2)
    macs = 0

    def count(module, inp, out):
        nonlocal macs
        macs += inp[0].numel() // inp[0].shape[-1] * module.in_features * module.out_features

    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_hook(count)
    model(torch.randint(0, vocab, (b, t)))
    attn_macs = depth * 2 * b * t * t * d  # QK^T and attention·V
    assert train_step_flops(b, t, d, depth, 4, vocab) == 3 * 2 * (macs + attn_macs)


@pytest.mark.slow
def test_harness_bench_reports_both_loops():
    rows = harness.run(steps=12, rounds=1, extra=["model.dim=32", "model.depth=2"])
    r = rows[0]
    assert r["plain steps/s"] > 0 and r["harness steps/s"] > 0
    ratio = r["harness/plain (median of rounds)"]
    assert ratio == pytest.approx(r["harness steps/s"] / r["plain steps/s"])  # one round
    assert r["min..max"] == f"{ratio:.3f}..{ratio:.3f}"


def test_optimizer_bench_times_every_kind_and_the_default():
    rows = optimizer.run("cpu", ["model.dim=32", "model.depth=1"])
    assert [r["optimizer"] for r in rows] == ["per-tensor loop", "foreach", "fused", "default"]
    assert rows[0]["vs per-tensor loop"] == 1.0 and all(r["ms/step"] > 0 for r in rows)


@pytest.mark.slow
def test_wait_policy_child_trains_under_the_policy_it_is_given():
    assert wait_policy.child("PASSIVE", 8) > 0


def test_mfu_bench_divides_the_counted_flops_by_the_measured_step():
    (row,) = mfu_run.run("cpu", "fp32")
    s = mfu_run.CPU_SHAPE
    flops = train_step_flops(s["batch"], s["seq"], s["dim"], s["depth"], 4, s["vocab"])
    assert row["achieved TFLOP/s"] == pytest.approx(flops / (row["step ms"] / 1e3) / 1e12)
    assert row["MFU"] == pytest.approx(row["achieved TFLOP/s"] / row["matmul peak TFLOP/s"])
    assert 0 < row["MFU"] < 1.5  # a count or a peak off by a factor would land outside


def test_norm_bench_times_each_norm_forward_and_backward():
    from resnorm.bench import norm

    x = torch.randn(16, 32, requires_grad=True)
    layer = norm.build_norm("rmsnorm", 32)
    norm._step(layer, x, torch.ones(16, 32))()
    assert x.grad is not None and layer.weight.grad is not None  # the backward really ran
    rows = norm.run("cpu", widths=(32,), tokens=64)
    assert [r["width"] for r in rows] == [32]
    assert all(rows[0][f"{n} ms"] > 0 for n in norm.NORMS)
    ratio = rows[0]["rmsnorm ms"] / rows[0]["layernorm ms"]
    assert rows[0]["rmsnorm / layernorm"] == pytest.approx(ratio)


def test_block_cost_bench_times_four_blocks_and_counts_the_norms_parameters(tmp_path, capsys):
    import json
    import math

    from resnorm.bench import block_cost
    from resnorm.bench.cli import main

    out = tmp_path / "block_cost.json"
    argv = ["block_cost", "--device", "cpu", "--widths", "32", "64", "--batch", "2", "--seq", "4",
            "--rounds", "2", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for name in ("pre_ln", "no_norm", "no_residual", "plain"):
        assert f"{name} ms" in printed and f"{name} params" in printed
    rows = json.loads(out.read_text())["rows"]
    assert [r["width"] for r in rows] == [32, 64]
    for r in rows:
        d = r["width"]
        for name in block_cost.CONFIGS:
            assert math.isfinite(r[f"{name} ms"]) and r[f"{name} ms"] > 0
        for label in block_cost.RATIOS:
            assert math.isfinite(r[label]) and r[label] > 0
            lo, hi = (float(v) for v in r[f"{label} range"].split(".."))
            assert 0 < lo <= hi
        # two LayerNorms of 2·d each; the residual adds own nothing
        assert r["pre_ln params"] - r["no_norm params"] == 4 * d
        assert r["no_residual params"] == r["pre_ln params"]
        assert r["plain params"] == r["no_norm params"]


def test_block_cost_configs_differ_only_by_skip_and_norms():
    from resnorm.bench import block_cost

    x = torch.randn(2, 4, 32)
    blocks = {}
    for name in block_cost.CONFIGS:
        torch.manual_seed(0)  # same weights in all four
        blocks[name] = block_cost.build(name, 32).eval()
    norms = {
        n: sum(isinstance(m, torch.nn.LayerNorm) for m in b.modules()) for n, b in blocks.items()
    }
    assert norms == {"pre_ln": 2, "no_norm": 0, "no_residual": 2, "plain": 0}
    with torch.no_grad():
        attn, ffn = blocks["plain"].attn.fn, blocks["plain"].ffn.fn
        # the same ops as the block runs: equal up to the order of its sums
        want = ffn(attn(x))
        torch.testing.assert_close(blocks["plain"](x), want, **rounding_tol(want, 16))
        h = x + attn(x)
        want = h + ffn(h)
        torch.testing.assert_close(blocks["no_norm"](x), want, **rounding_tol(want, 16))
