"""PackedAdamW and per-member clipping: every member is bitwise its solo run."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from torch.func import functional_call

from resnorm.data.digits import DigitsDataModule
from resnorm.data.loaders import TensorLoader
from resnorm.training.builders import build_model
from resnorm.training.optim import build_optimizer, lr_factor, param_groups
from resnorm.training.packed_optim import PackedAdamW, clip_member_grads_

STEPS, TOTAL = 50, 24  # past total_steps, so every schedule also runs on its floor
MEMBERS = [
    {"lr": 3e-3, "weight_decay": 0.1, "warmup_steps": 0, "schedule": "cosine"},
    {"lr": 1e-3, "weight_decay": 0.0, "warmup_steps": 5, "schedule": "linear",
     "min_lr_ratio": 0.1, "betas": (0.8, 0.99), "eps": 1e-6},
    {"lr": 1e-2, "weight_decay": 0.3, "warmup_steps": 10, "schedule": "constant",
     "betas": (0.9, 0.95)},
]  # fmt: skip


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    dm = DigitsDataModule(batch_size=32)
    dm.setup()
    return dm


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits, so that -0.0 != 0.0 and NaN == NaN of the same payload."""
    return t.detach().contiguous().view(torch.int32)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(bits(a), bits(b))


def real_model(compose_cfg, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(compose_cfg("model.depth=2").model, DigitsDataModule().spec)


def batches(dm: DigitsDataModule, seed: int, n: int = STEPS) -> list[tuple[torch.Tensor, ...]]:
    loader = TensorLoader(*dm.splits["train"], batch_size=32, shuffle=True, seed=seed)
    out: list[tuple[torch.Tensor, ...]] = []
    while len(out) < n:
        out.extend(loader)
    return out[:n]


def stack(models: list[nn.Module]) -> dict[str, nn.Parameter]:
    """The k models' parameters (each of one member) as (k, ...) parameters of a pack."""
    named = [dict(m.named_parameters()) for m in models]
    return {n: nn.Parameter(torch.cat([d[n].detach() for d in named])) for n in named[0]}


def member_grads(model: nn.Module, packed: dict[str, nn.Parameter], member_batches) -> None:
    """Each member's gradient of its own loss, at its own parameter views, into packed.grad."""
    grads = []
    for i, (x, y) in enumerate(member_batches):
        views = {n: p[i : i + 1] for n, p in packed.items()}
        loss = F.cross_entropy(functional_call(model, views, (x,)), y)
        grads.append(torch.autograd.grad(loss, list(views.values())))
    for j, p in enumerate(packed.values()):
        p.grad = torch.cat([g[j] for g in grads])


def member_opt(packed: dict[str, nn.Parameter], members=MEMBERS) -> PackedAdamW:
    return PackedAdamW.from_member_configs(packed.values(), members, total_steps=TOTAL)


def test_one_member_is_bitwise_torch_fused_adamw_with_lambdalr_and_clipping(compose_cfg, digits):
    model = real_model(compose_cfg)
    solo, packed = copy.deepcopy(model), stack([model])
    options = {**MEMBERS[1], "total_steps": TOTAL}
    opt, sched = build_optimizer(solo, **options)
    popt = member_opt(packed, [MEMBERS[1]])
    assert opt.defaults["fused"] and popt.defaults["fused"]
    assert [len(g["params"]) for g in popt.param_groups] == [
        len(g["params"]) for g in opt.param_groups
    ]
    clipped = 0
    for x, y in batches(digits, seed=1):
        lr = opt.param_groups[0]["lr"]
        F.cross_entropy(solo(x), y).backward()
        norm = torch.nn.utils.clip_grad_norm_(solo.parameters(), 0.5, foreach=True)
        opt.step()
        sched.step()
        opt.zero_grad()
        member_grads(model, packed, [(x, y)])
        [pnorm] = clip_member_grads_(packed.values(), [0.5])
        popt.step()
        popt.zero_grad()
        assert same_bits(pnorm, norm) and popt.last_lrs == [lr]
        clipped += bool(norm > 0.5)
        for n, p in solo.named_parameters():
            assert same_bits(packed[n][0:1], p), n
    assert clipped > 10 and popt.steps == [STEPS]
    for p, q in zip(solo.parameters(), packed.values(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            mine = popt.state[q][key]  # (k, ...) moments, (k,) steps
            assert same_bits(mine[0] if key == "step" else mine[0:1], opt.state[p][key]), key


def run_pack(model, packed, popt, member_batches, refs=None, nan_for=()):
    """Steps the pack (and each member's solo reference fed the same gradients)."""
    for step_batches in zip(*member_batches, strict=True):
        member_grads(model, packed, step_batches)
        for p in packed.values():
            for i in nan_for:
                p.grad[i] = float("nan")
        popt.step()
        for i, (ref, ref_opt) in enumerate(refs or []):
            if not popt.frozen[i]:
                for p, r in zip(packed.values(), ref.values(), strict=True):
                    r.grad = p.grad[i : i + 1].clone()
                ref_opt.step()
        popt.zero_grad()


def assert_member_is(packed, popt, i, ref, ref_opt) -> None:
    for p, r in zip(packed.values(), ref.values(), strict=True):
        assert same_bits(p[i], r[0])
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert same_bits(popt.state[p][key][i], ref_opt.state[r][key][0])
    assert popt.steps[i] == ref_opt.steps[0] and popt.last_lrs[i] == ref_opt.last_lrs[0]


def make_pack(compose_cfg, digits, k: int = 3, steps: int = STEPS):
    model = real_model(compose_cfg)
    packed = stack([real_model(compose_cfg, seed) for seed in range(k)])
    member_batches = [batches(digits, seed, steps) for seed in range(k)]
    return model, packed, member_opt(packed, (MEMBERS * 2)[:k]), member_batches


def solo_refs(packed):
    refs = []
    for i, cfg in enumerate(MEMBERS):
        ref = {n: nn.Parameter(p[i : i + 1].detach().clone()) for n, p in packed.items()}
        refs.append((ref, member_opt(ref, [cfg])))
    return refs


def test_each_member_of_a_pack_is_bitwise_its_own_run(compose_cfg, digits):
    model, packed, popt, member_batches = make_pack(compose_cfg, digits, steps=30)
    refs = solo_refs(packed)
    run_pack(model, packed, popt, member_batches, refs)
    lrs = [c["lr"] * lr_factor(29, c["warmup_steps"], TOTAL, c["schedule"],
                               c.get("min_lr_ratio", 0.0)) for c in MEMBERS]  # fmt: skip
    assert popt.last_lrs == lrs and len(set(lrs)) == 3
    for i, (ref, ref_opt) in enumerate(refs):
        assert_member_is(packed, popt, i, ref, ref_opt)


def test_a_frozen_member_stays_bitwise_put_and_the_others_go_on(compose_cfg, digits):
    model, packed, popt, member_batches = make_pack(compose_cfg, digits, steps=16)
    refs = solo_refs(packed)
    run_pack(model, packed, popt, [b[:8] for b in member_batches], refs)
    popt.freeze(1)
    kept = {n: p[1].clone() for n, p in packed.items()}
    kept_state = {n: {k: v[1].clone() for k, v in popt.state[p].items()} for n, p in packed.items()}
    run_pack(model, packed, popt, [b[8:] for b in member_batches], refs, nan_for=[1])
    assert popt.frozen == (False, True, False) and popt.steps == [16, 8, 16]
    for n, p in packed.items():
        assert same_bits(p[1], kept[n])
        for key, v in popt.state[p].items():
            assert same_bits(v[1], kept_state[n][key])
    for i in (0, 2):
        assert_member_is(packed, popt, i, *refs[i])
    assert all(torch.isfinite(p).all() for p in packed.values())


def test_state_dict_round_trip_resumes_bitwise(compose_cfg, digits):
    model, packed, popt, member_batches = make_pack(compose_cfg, digits, steps=18)
    run_pack(model, packed, popt, [b[:6] for b in member_batches])
    popt.freeze(2)
    run_pack(model, packed, popt, [b[6:12] for b in member_batches], nan_for=[2])
    buf = io.BytesIO()
    torch.save(popt.state_dict(), buf)
    saved = {n: p.detach().clone() for n, p in packed.items()}
    run_pack(model, packed, popt, [b[12:] for b in member_batches], nan_for=[2])

    resumed = {n: nn.Parameter(p.clone()) for n, p in saved.items()}
    ropt = member_opt(resumed)
    buf.seek(0)
    ropt.load_state_dict(torch.load(buf))
    assert ropt.steps == [12, 12, 6] and ropt.frozen == (False, False, True)
    run_pack(model, resumed, ropt, [b[12:] for b in member_batches], nan_for=[2])
    for n, p in packed.items():
        assert same_bits(resumed[n], p), n
        for key, v in popt.state[p].items():
            assert same_bits(ropt.state[resumed[n]][key], v)
    assert ropt.steps == popt.steps and ropt.last_lrs == popt.last_lrs
    with torch.no_grad():  # the same optimizer rewound in place goes the same way again
        for n, p in packed.items():
            p.copy_(saved[n])
    buf.seek(0)
    popt.load_state_dict(torch.load(buf))
    run_pack(model, packed, popt, [b[12:13] for b in member_batches], nan_for=[2])
    for state in popt.state.values():  # new state tensors, as a move to a device makes
        state.update({key: v.clone() for key, v in state.items()})
    run_pack(model, packed, popt, [b[13:] for b in member_batches], nan_for=[2])
    for n, p in packed.items():
        assert same_bits(p, resumed[n])
        for key, v in popt.state[p].items():
            assert same_bits(v, ropt.state[resumed[n]][key])
    dup = copy.deepcopy(ropt)  # torch pickles only defaults, state and groups
    dup.step()
    assert dup.steps == [s + 1 for s in ropt.steps[:2]] + [6] and dup.frozen == ropt.frozen


def test_member_clipping_is_bitwise_the_solo_clip_and_norm(compose_cfg, digits):
    model, packed, _, member_batches = make_pack(compose_cfg, digits, k=4, steps=1)
    member_grads(model, packed, [b[0] for b in member_batches])
    for p in packed.values():
        p.grad[3] = float("inf")
    before = {n: p.grad.clone() for n, p in packed.items()}
    max_norms = [0.05, None, 1e3, 0.05]
    norms = clip_member_grads_(packed.values(), max_norms, active=[True, True, True, False])
    assert norms[3] is None
    for n, p in packed.items():  # the inactive member's gradients are left alone
        assert same_bits(p.grad[3], before[n][3])
    for i, max_norm in enumerate(max_norms[:3]):
        solo = [nn.Parameter(p[i].detach().clone()) for p in packed.values()]
        for s, g in zip(solo, before.values(), strict=True):
            s.grad = g[i].clone()
        if max_norm is None:  # the module's norm when it does not clip
            norm = torch.nn.utils.get_total_norm([s.grad for s in solo], foreach=True)
        else:
            norm = torch.nn.utils.clip_grad_norm_(solo, max_norm, foreach=True)
        assert same_bits(norms[i], norm) and norms[i].ndim == 0
        for s, p in zip(solo, packed.values(), strict=True):
            assert same_bits(p.grad[i], s.grad)
    assert norms[0] > 0.05  # member 0 was clipped, member 2 (1e3) was not
    first = next(iter(packed))
    assert not torch.equal(packed[first].grad[0], before[first][0])
    assert same_bits(packed[first].grad[2], before[first][2])


def test_foreach_fallback_is_bitwise_torch_foreach_adamw(compose_cfg, digits):
    model = real_model(compose_cfg)
    solo, packed = copy.deepcopy(model), stack([model])
    cfg = MEMBERS[2]
    opt = torch.optim.AdamW(
        param_groups(solo, cfg["weight_decay"]), lr=cfg["lr"], betas=cfg["betas"],
        foreach=True, fused=False,
    )  # fmt: skip
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg["warmup_steps"], TOTAL, cfg["schedule"], 0.0)
    )
    popt = member_opt(packed, [{**cfg, "fused": False}])
    for x, y in batches(digits, seed=4, n=20):
        F.cross_entropy(solo(x), y).backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        member_grads(model, packed, [(x, y)])
        popt.step()
        popt.zero_grad()
    assert not popt.defaults["fused"] and popt.state[packed["head.bias"]]["step"].is_cpu
    for n, p in solo.named_parameters():
        assert same_bits(packed[n][0:1], p), n


def test_step_runs_the_closure_with_grad_like_torch_optimizers(compose_cfg, digits):
    model = real_model(compose_cfg)
    packed = stack([model, model])
    popt = PackedAdamW(packed.values(), lr=[1e-3, 2e-3], weight_decay=0.0, total_steps=10)
    x, y = batches(digits, seed=0, n=1)[0]
    start = {n: p.detach().clone() for n, p in packed.items()}

    def closure() -> torch.Tensor:
        popt.zero_grad()
        member_grads(model, packed, [(x, y), (x, y)])
        return torch.tensor(1.5)

    with torch.no_grad():  # as Lightning may call it; the closure still gets autograd
        assert popt.step(closure).item() == 1.5
    assert all(not torch.equal(p, start[n]) for n, p in packed.items() if p.grad.any())
    assert popt.steps == [1, 1] and popt.last_lrs == [1e-3, 2e-3]


def test_member_configs_read_the_project_optim_config(compose_cfg):
    optim = OmegaConf.to_container(compose_cfg().optim)
    optim.pop("grad_clip")
    packed = stack([real_model(compose_cfg)] * 2)
    popt = PackedAdamW.from_member_configs(packed.values(), [optim, {**optim, "lr": 0.1}], 100)
    assert popt.options["betas"] == [(0.9, 0.999)] * 2 and popt.options["lr"] == [1e-3, 0.1]
    # decay on the parameters whose per-member shape has 2+ dimensions, as build_optimizer
    decay, no_decay = param_groups(real_model(compose_cfg), 0.05)
    assert [len(g["params"]) for g in popt.param_groups] == [
        len(decay["params"]), len(no_decay["params"])
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"lr": [1e-3]}, "optim.lr has 1 values for a pack of 2"),
     ({"lr": [1e-3, 0.0]}, "optim.lr"), ({"schedule": ["cosine", "step"]}, "allowed: cosine"),
     ({"warmup_steps": [0, -1]}, "optim.warmup_steps")],
)  # fmt: skip
def test_bad_member_options_name_the_option(kwargs, fragment):
    params = [nn.Parameter(torch.zeros(2, 3))]
    with pytest.raises(ValueError, match=fragment):
        PackedAdamW(params, **{"lr": 1e-3, "weight_decay": 0.0, **kwargs})
    with pytest.raises(ValueError, match="leading member dimension"):
        PackedAdamW([nn.Parameter(torch.zeros(2, 3)), nn.Parameter(torch.zeros(3))], lr=1e-3,
                    weight_decay=0.0)  # fmt: skip
