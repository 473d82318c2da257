"""Packed models: member i of a k-member model computes what its solo model computes.

Every variant of conf/variant/ and every task model kind, built as a pack of three from
three solo models, against those solo models: outputs and gradients per member. A model
of one member runs torch's own ops (checked against torch's layers, bit for bit).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from conftest import rounding_tol
from resnorm.data.spec import TaskSpec
from resnorm.models import (
    Block,
    BlockConfig,
    Embedding,
    Encoder,
    Linear,
    PatchProjection,
    build_norm,
    member_view,
    members_of,
    profile_init,
    share_member_grads,
    stack_members,
)
from resnorm.models.attention import Attention
from resnorm.paths import conf_dir
from resnorm.training.builders import build_model, build_pack_model

DIM, DEPTH, HEADS, B, K, SEEDS = 32, 2, 4, 3, 3, (0, 1, 2)


def variant_configs() -> dict[str, BlockConfig]:
    """Every conf/variant/*.yaml over conf/model/default.yaml, as a small BlockConfig."""
    conf = Path(conf_dir())
    base = yaml.safe_load((conf / "model" / "default.yaml").read_text())
    out = {}
    for path in sorted((conf / "variant").glob("*.yaml")):
        options = {**base, **yaml.safe_load(path.read_text())}
        name = options.pop("variant")
        out[name] = BlockConfig.from_options({**options, "dim": DIM, "depth": DEPTH})
    return out


VARIANTS = variant_configs()
# task model kinds: spec, and one member's input batch for a generator
KINDS: dict[str, tuple[TaskSpec, Any]] = {
    "vit_cls": (
        TaskSpec("classification", "image", {"image_size": 8, "patch": 2, "channels": 1},
                 num_classes=10, pool="cls"),
        lambda g: torch.randn(B, 1, 8, 8, generator=g),
    ),
    "speech_cls": (
        TaskSpec("classification", "spectrogram", {"n_mels": 12, "frames": 20, "patch": 4},
                 num_classes=10, pool="cls"),
        lambda g: torch.randn(B, 12, 20, generator=g),
    ),
    "tokens_mean": (
        TaskSpec("classification", "tokens", {"vocab_size": 30, "seq_len": 9},
                 num_classes=10, pool="mean"),
        lambda g: torch.randint(0, 30, (B, 9), generator=g),
    ),
    "lm": (
        TaskSpec("lm", "tokens", vocab_size=30, seq_len=9),
        lambda g: torch.randint(0, 30, (B, 9), generator=g),
    ),
}  # fmt: skip


@torch.no_grad()
def perturb(model: nn.Module, seed: int) -> None:
    """Move every parameter off its init (ReZero's α = 0, unit gains) so each term counts."""
    g = torch.Generator().manual_seed(1000 + seed)
    for p in model.parameters():
        p.add_(torch.randn(p.shape, generator=g) * 0.2)


def loss_of(out: torch.Tensor) -> torch.Tensor:
    return (out**2).mean() + out.mean()


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad for n, p in model.named_parameters()}


def assert_pack_matches_solos(
    variant: str, kind: str, dtype: torch.dtype, tol: Callable[[torch.Tensor], dict[str, float]]
) -> None:
    """A pack of three from solo models seeded 0, 1, 2 (moved off their init), on three
    different batches: each member's output, and its gradient of the sum of the members'
    losses, against its solo model's, within ``tol(expected)``."""
    spec, make_input = KINDS[kind]
    inputs = [make_input(torch.Generator().manual_seed(10 + i)) for i in range(K)]

    def init_member(solo: nn.Module, i: int) -> None:
        perturb(solo, i)
        profile_init(solo, inputs[i])  # Admin's ω from the member's own batch; else nothing

    pack, solos = build_pack_model(VARIANTS[variant], spec, SEEDS, torch.manual_seed,
                                   init_member)  # fmt: skip
    assert members_of(pack) == K and all(members_of(s) == 1 for s in solos)
    pack, solos = pack.to(dtype), [s.to(dtype) for s in solos]
    inputs = [x.to(dtype) if x.is_floating_point() else x for x in inputs]
    out = pack(torch.stack(inputs))
    sum(loss_of(out[i]) for i in range(K)).backward()
    for i, (solo, x) in enumerate(zip(solos, inputs, strict=True)):
        expected = solo(x)
        loss_of(expected).backward()
        torch.testing.assert_close(out[i], expected, **tol(expected))
        packed_grads = grads(pack)
        for name, g in grads(solo).items():
            torch.testing.assert_close(packed_grads[name][i : i + 1], g, **tol(g),
                                       msg=lambda m, n=name: f"{n}: {m}")  # fmt: skip


FLOAT64_TOL = {"rtol": 1e-9, "atol": 1e-11}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_member_of_a_pack_computes_its_solo_model(variant, kind):
    # in float64 the two orders of summation agree to ~1e-15: any difference in the math
    # (an eps, a scale, a member's parameter read by another) shows far above this bound
    assert_pack_matches_solos(variant, kind, torch.float64, lambda _: FLOAT64_TOL)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("variant", ["pre_ln", "post_ln"])
def test_each_member_of_a_float32_pack_computes_its_solo_model(variant, kind):
    # float32: members sum in another order than a solo model (a batched matmul for a
    # convolution; the order also moves with the threads a loaded machine gives), so
    # results agree to rounding of each tensor's largest values: measured up to ~30 eps of
    # it at 1 or 2 threads (speech_cls: 48-term patch sums), against ~1600+ eps for one
    # weight of a member off by 1e-3
    assert_pack_matches_solos(variant, kind, torch.float32, lambda ref: rounding_tol(ref, 128))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_per_member_parameter_counts_are_the_solo_counts(variant):
    cfg = VARIANTS[variant]
    spec = KINDS["vit_cls"][0]
    solo, pack = build_model(cfg, spec), build_model(cfg, spec, members=K)
    assert count(pack) == K * count(solo)
    assert all(p.shape[0] == K for p in pack.parameters())
    names = [n for n, _ in solo.named_parameters()]
    assert [n for n, _ in pack.named_parameters()] == names


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_identity_residual_adds_nothing_and_layernorm_two_dim_per_member():
    base = Block(DIM, HEADS, residual="on", norm_position="none", members=K)
    assert sum(p.numel() for p in base.attn.skip.parameters()) == 0
    off = Block(DIM, HEADS, residual="off", norm_position="none", members=K)
    assert count(off) == count(base)
    norm = build_norm("layernorm", DIM, members=K)
    assert [tuple(p.shape) for p in norm.parameters()] == [(K, DIM), (K, DIM)]
    assert sum(p.numel() for p in norm.parameters()) == K * 2 * DIM


# ---- a model of one member runs torch's layers, op for op -----------------------------
def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a.view(torch.int32), b.view(torch.int32))


def test_one_member_layers_draw_torchs_init_and_run_torchs_ops():
    x = torch.randn(4, 5, 6)
    torch.manual_seed(0)
    theirs = nn.Linear(6, 7)
    torch.manual_seed(0)
    ours = Linear(6, 7)
    assert same_bits(ours.weight[0], theirs.weight) and same_bits(ours.bias[0], theirs.bias)
    assert same_bits(ours(x), theirs(x)) and same_bits(ours(x[None])[0], theirs(x))

    img = torch.randn(4, 3, 8, 8)
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 6, kernel_size=2, stride=2)
    torch.manual_seed(1)
    patches = PatchProjection(3, 6, patch=2, spatial_dims=2)
    assert same_bits(patches.weight[0], conv.weight) and same_bits(patches.bias[0], conv.bias)
    assert same_bits(patches(img[None])[0], conv(img).flatten(2).transpose(1, 2))

    ids = torch.randint(0, 11, (4, 5))
    torch.manual_seed(2)
    emb = nn.Embedding(11, 6)
    torch.manual_seed(2)
    ours_emb = Embedding(11, 6)
    assert same_bits(ours_emb(ids[None])[0], emb(ids))

    norm = build_norm("layernorm", 6, eps=1e-5)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    ref = F.layer_norm(x, (6,), norm.weight[0], norm.bias[0], 1e-5)
    assert same_bits(norm(x), ref)


@pytest.mark.parametrize("kind", list(KINDS))
def test_one_member_takes_a_plain_or_a_packed_batch_alike(kind):
    spec, make_input = KINDS[kind]
    torch.manual_seed(3)
    model = build_model(VARIANTS["pre_ln"], spec)
    x = make_input(torch.Generator().manual_seed(4))
    plain, packed = model(x), model(x[None])
    assert packed.shape == (1, *plain.shape) and same_bits(packed[0], plain)
    with pytest.raises(ValueError, match="expected inputs"):
        model(x[None, None])


def test_encoder_keeps_its_public_shapes():
    enc = Encoder(dim=DIM, depth=2, heads=HEADS)
    x = torch.randn(B, 5, DIM)
    assert enc(x).shape == (B, 5, DIM) and same_bits(enc(x[None])[0], enc(x))
    pack = Encoder(BlockConfig(dim=DIM, depth=2, heads=HEADS), members=K)
    assert pack(torch.randn(K, B, 5, DIM)).shape == (K, B, 5, DIM)
    with pytest.raises(ValueError, match="takes \\(members, B, T, dim\\)"):
        pack(torch.randn(K * B, 5, DIM))


def test_one_member_linears_take_the_f_linear_path(monkeypatch):
    calls: list[tuple[int, ...]] = []
    real = F.linear

    def spy(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        calls.append(tuple(w.shape))
        return real(x, w, b)

    monkeypatch.setattr(F, "linear", spy)
    Attention(DIM, HEADS)(torch.randn(B, 5, DIM))
    assert calls == [(3 * DIM, DIM), (DIM, DIM)]  # the solo (out, in) weights
    calls.clear()
    Attention(DIM, HEADS, members=K)(torch.randn(K, B, 5, DIM))
    assert calls == []  # a pack uses batched matmuls instead


# ---- member views ------------------------------------------------------------------------
def pack_of(variant: str, kind: str = "vit_cls") -> tuple[nn.Module, list[nn.Module], Any]:
    spec, make_input = KINDS[kind]
    pack, solos = build_pack_model(VARIANTS[variant], spec, SEEDS, torch.manual_seed)
    return pack, solos, make_input


def test_a_member_view_computes_its_slice_of_the_pack_and_shares_its_storage():
    pack, _, make_input = pack_of("post_ln")
    x = torch.stack([make_input(torch.Generator().manual_seed(i)) for i in range(K)])
    view = member_view(pack, build_model(VARIANTS["post_ln"], KINDS["vit_cls"][0]), 1)
    expected = pack(x)[1]
    torch.testing.assert_close(view(x[1]), expected, **rounding_tol(expected, 128))
    before = pack.head.bias.detach().clone()
    with torch.no_grad():
        view.head.bias.add_(1.0)
    assert torch.equal(pack.head.bias[1], before[1] + 1.0)
    assert torch.equal(pack.head.bias[0], before[0]) and torch.equal(pack.head.bias[2], before[2])
    with torch.no_grad():  # and the other way: an update of the pack shows in the view
        pack.encoder.blocks[0].attn.fn.qkv.weight.mul_(2.0)
    assert torch.equal(view.encoder.blocks[0].attn.fn.qkv.weight[0],
                       pack.encoder.blocks[0].attn.fn.qkv.weight[1])  # fmt: skip


def test_a_member_views_grads_are_the_packs_member_grads():
    pack, _, make_input = pack_of("pre_ln")
    x = torch.stack([make_input(torch.Generator().manual_seed(i)) for i in range(K)])
    view = member_view(pack, build_model(VARIANTS["pre_ln"], KINDS["vit_cls"][0]), 2)
    out = pack(x)
    sum(loss_of(out[i]) for i in range(K)).backward()
    share_member_grads(pack, view, 2)
    for (name, p), v in zip(pack.named_parameters(), view.parameters(), strict=True):
        assert v.grad.data_ptr() == p.grad[2:3].data_ptr(), name
    view.zero_grad(set_to_none=False)  # a probe zeroing its view's grads zeroes member 2's
    assert all(p.grad[2].abs().sum() == 0 and p.grad[0].abs().sum() > 0
               for p in pack.parameters())  # fmt: skip


def omegas(model: nn.Module) -> list[torch.Tensor]:
    return [s.skip.omega for b in model.encoder.blocks for s in (b.attn, b.ffn)]


def test_admin_profiles_each_member_through_its_view_or_in_the_pack():
    spec, make_input = KINDS["tokens_mean"]
    pack, solos = build_pack_model(VARIANTS["admin"], spec, SEEDS, torch.manual_seed)
    twin = copy.deepcopy(pack)
    inputs = [make_input(torch.Generator().manual_seed(20 + i)) for i in range(K)]
    for i, (solo, x) in enumerate(zip(solos, inputs, strict=True)):
        assert profile_init(solo, x)
        view = member_view(pack, build_model(VARIANTS["admin"], spec), i)
        assert profile_init(view, x)  # writes member i of the pack in place
    for i, solo in enumerate(solos):
        for packed, alone in zip(omegas(pack), omegas(solo), strict=True):
            assert torch.equal(packed[i : i + 1], alone)
    assert not torch.equal(omegas(pack)[-1][0], omegas(pack)[-1][1])  # ω is per member
    assert profile_init(twin, torch.stack(inputs))  # the pack's own pass: per-member variances
    for packed, direct in zip(omegas(pack), omegas(twin), strict=True):
        torch.testing.assert_close(direct, packed, rtol=1e-5, atol=0)


def test_deepnorm_reinitialises_every_member():
    depth, members = 6, 4
    torch.manual_seed(5)
    enc = Encoder(BlockConfig(dim=DIM, depth=depth, heads=HEADS, residual="deepnorm",
                              norm_position="post"), members=members)  # fmt: skip
    torch.manual_seed(5)
    plain = Encoder(BlockConfig(dim=DIM, depth=depth, heads=HEADS, norm_position="post"),
                    members=members)  # fmt: skip
    beta = (8 * depth) ** -0.25
    for i in range(members):  # β-scaled FFN weights in each member, not only the first
        ours = torch.stack([b.ffn.fn.fc2.weight[i].std() for b in enc.blocks]).mean()
        theirs = torch.stack([b.ffn.fn.fc2.weight[i].std() for b in plain.blocks]).mean()
        assert (ours / theirs).item() == pytest.approx(beta, rel=0.15)


def test_build_pack_model_reproduces_each_solo_init_and_leaves_the_rng_as_a_solo_build():
    spec = KINDS["lm"][0]
    pack, _ = build_pack_model(VARIANTS["deepnorm"], spec, SEEDS, torch.manual_seed)
    after_pack = torch.get_rng_state()
    for i, seed in enumerate(SEEDS):
        torch.manual_seed(seed)
        solo = build_model(VARIANTS["deepnorm"], spec)
        for (name, p), q in zip(pack.named_parameters(), solo.parameters(), strict=True):
            assert torch.equal(p[i : i + 1], q), name
    assert torch.equal(torch.get_rng_state(), after_pack)  # the last solo's build, no more


def test_mismatched_members_are_refused():
    spec = KINDS["vit_cls"][0]
    pack = build_model(VARIANTS["pre_ln"], spec, members=2)
    with pytest.raises(ValueError, match="takes 2 solo models"):
        stack_members(pack, [build_model(VARIANTS["pre_ln"], spec)])
    other = build_model(VARIANTS["rezero"], spec)
    with pytest.raises(ValueError, match="architecture"):
        stack_members(pack, [other, other])
    with pytest.raises(ValueError, match="a pack of 2 members got inputs"):
        pack(torch.randn(3, B, 1, 8, 8))
    with pytest.raises(IndexError):
        member_view(pack, build_model(VARIANTS["pre_ln"], spec), 2)
