"""AdamW set-up: parameter groups, the LR schedule, and the fused kernel on CPU."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import rounding_tol
from resnorm.training.optim import OPTIM_KEYS, build_optimizer, lr_factor, param_groups


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.Linear(16, 3))


def test_no_weight_decay_on_biases_and_norm_gains():
    decay, no_decay = param_groups(small_model(), 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert [p.ndim for p in decay["params"]] == [2, 2]
    assert all(p.ndim == 1 for p in no_decay["params"]) and len(no_decay["params"]) == 4


def test_schedule_warms_up_linearly_then_decays_to_the_floor():
    f = [lr_factor(s, 10, 110, "cosine", 0.1) for s in range(110)]
    assert f[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert f[10] == pytest.approx(1.0) and f[60] == pytest.approx(0.1 + 0.9 * 0.5)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert lr_factor(110, 10, 110, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(60, 10, 110, "linear", 0.0) == pytest.approx(0.5)
    assert lr_factor(99, 0, 110, "constant", 0.0) == 1.0
    cos = 0.5 * (1 + math.cos(math.pi * 0.25))
    assert lr_factor(25, 0, 100, "cosine", 0.0) == pytest.approx(cos)


def test_cpu_gets_the_fused_kernel_and_it_matches_the_per_tensor_loop():
    models = {fused: small_model() for fused in (None, False)}
    opts = {}
    for fused, model in models.items():
        opts[fused], _ = build_optimizer(model, lr=1e-2, weight_decay=0.1, fused=fused)
    assert opts[None].defaults["fused"] is True and not opts[False].defaults["fused"]
    x = torch.randn(32, 8)
    for _ in range(20):
        for fused, model in models.items():
            model(x).square().mean().backward()
            opts[fused].step()
            opts[fused].zero_grad()
    for a, b in zip(models[None].parameters(), models[False].parameters(), strict=True):
        # the fused kernel rounds Adam's update otherwise; 20 steps compound it (~5 eps seen)
        torch.testing.assert_close(a, b, **rounding_tol(b, 64))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"lr": 0.0}, "optim.lr"), ({"warmup_steps": -1}, "optim.warmup_steps"),
     ({"weight_decay": -0.1}, "optim.weight_decay"), ({"schedule": "step"}, "allowed: cosine")],
)  # fmt: skip
def test_bad_options_name_the_option(kwargs, fragment):
    base = {"lr": 1e-3, "weight_decay": 0.0, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        build_optimizer(small_model(), **base)


def test_every_optim_key_of_the_config_reaches_the_optimizer(compose_cfg):
    cfg = compose_cfg()
    assert set(OPTIM_KEYS) == {"lr", "weight_decay", "betas", "eps", "warmup_steps",
                               "schedule", "min_lr_ratio", "fused"}  # fmt: skip
    options = {k: cfg.optim[k] for k in OPTIM_KEYS}  # each one is a key of conf/optim
    opt, sched = build_optimizer(small_model(), total_steps=10, **options)
    assert opt.defaults["lr"] == cfg.optim.lr and opt.defaults["eps"] == cfg.optim.eps
    assert sched.get_last_lr()[0] == pytest.approx(
        cfg.optim.lr * lr_factor(0, cfg.optim.warmup_steps, 10, cfg.optim.schedule,
                                 cfg.optim.min_lr_ratio)
    )  # fmt: skip
