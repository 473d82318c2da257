"""Admin (Liu et al. 2020) and Peri-LN (Kim et al. 2025) against their formulas, on real data."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from resnorm.models import Encoder, profile_init
from resnorm.training.builders import build_datamodule, build_model, data_dependent_init

DIM, HEADS, DEPTH, B, T = 32, 4, 3, 4, 6


def var(t: torch.Tensor) -> float:
    return t.var(unbiased=False).item()


def admin_reference(enc: Encoder, x: torch.Tensor) -> tuple[list[float], list[float]]:
    """ω_1 = 1, ω_{i+1} = sqrt(Var[x_{i-1}·ω_i] + Var[F_i(x_{i-1})]), walked sublayer by
    sublayer on a copy; also the branch variances Var[F_i(x_{i-1})]."""
    omegas, branch_vars, ratio, h = [], [], 1.0, x
    with torch.no_grad():
        for block in enc.blocks:
            for sub in (block.attn, block.ffn):
                f = sub.fn(h)
                omega = torch.full((h.shape[-1],), ratio)
                omegas.append(ratio)
                branch_vars.append(var(f))
                ratio = math.sqrt(var(h * omega) + var(f))
                h = sub.norm(h * omega + f)
    return omegas, branch_vars


def omegas_of(enc: Encoder) -> list[torch.Tensor]:
    """Each sublayer's ω, (dim,): member 0 of a model of one member."""
    return [sub.skip.omega.detach()[0] for b in enc.blocks for sub in (b.attn, b.ffn)]


def test_admin_profiling_follows_the_output_variance_accumulation():
    torch.manual_seed(0)
    enc = Encoder(DIM, DEPTH, HEADS, residual="admin", norm_position="post", dropout=0.1)
    x = torch.randn(B, T, DIM) * 2 + 0.5
    expected, branch_vars = admin_reference(copy.deepcopy(enc).eval(), x)
    assert all(torch.equal(w, torch.ones(DIM)) for w in omegas_of(enc))  # Post-LN before
    enc.train()
    assert profile_init(enc, x)
    assert enc.training  # the pass ran in eval mode (no dropout) and restored the mode
    got = omegas_of(enc)
    for w, want in zip(got, expected, strict=True):
        torch.testing.assert_close(w, torch.full((DIM,), want), rtol=1e-5, atol=0)
    assert expected[0] == 1.0 and all(b > a for a, b in zip(expected, expected[1:], strict=False))
    # the paper's form: ω_i² = Var[x_0] + Σ_{j<i} Var[F_j] (LayerNorm outputs have unit
    # variance at init, up to its eps)
    for i in range(1, len(expected)):
        assert expected[i] ** 2 == pytest.approx(var(x) + sum(branch_vars[:i]), rel=1e-3)
    # Admin's forward is N(x ⊙ ω + F(x)) with the profiled ω
    sub, h = enc.eval().blocks[0].ffn, torch.randn(B, T, DIM)
    torch.testing.assert_close(sub(h), sub.norm(h * got[1] + sub.fn(h)))


def test_admin_omega_is_a_checkpointed_parameter():
    torch.manual_seed(1)
    enc = Encoder(DIM, 2, HEADS, residual="admin", norm_position="post")
    profile_init(enc, torch.randn(B, T, DIM))
    state = enc.state_dict()
    assert "blocks.1.ffn.skip.omega" in state
    assert any(p is enc.blocks[1].ffn.skip.omega for p in enc.parameters())
    fresh = Encoder(DIM, 2, HEADS, residual="admin", norm_position="post")
    fresh.load_state_dict(state)  # a resume restores ω
    for a, b in zip(omegas_of(fresh), omegas_of(enc), strict=True):
        assert torch.equal(a, b)


def test_profiling_leaves_other_variants_untouched():
    torch.manual_seed(2)
    enc = Encoder(DIM, 2, HEADS, residual="deepnorm", norm_position="post")
    before = copy.deepcopy(enc.state_dict())
    rng = torch.get_rng_state()
    assert not profile_init(enc, torch.ones(B, T, DIM))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())


def test_admin_is_profiled_on_the_first_training_batch(compose_cfg):
    cfg = compose_cfg("variant=admin", "model.depth=2")
    dm = build_datamodule(cfg)
    dm.setup("fit")
    torch.manual_seed(3)
    model = build_model(cfg.model, dm.spec)
    # the encoder's input on the batch training starts from, read on an untouched copy
    seen: list[torch.Tensor] = []
    twin = copy.deepcopy(model).eval()
    twin.encoder.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    with torch.no_grad():
        twin(next(iter(dm.train_dataloader()))[0])
    expected, _ = admin_reference(twin.encoder, seen[0])
    assert data_dependent_init(model, dm)
    for w, want in zip(omegas_of(model.encoder), expected, strict=True):
        torch.testing.assert_close(w, torch.full((cfg.model.dim,), want), rtol=1e-5, atol=0)

    plain = build_model(compose_cfg("variant=post_ln", "model.depth=2").model, dm.spec)
    rng = torch.get_rng_state()
    assert not data_dependent_init(plain, dm)
    assert torch.equal(torch.get_rng_state(), rng)


def test_peri_ln_matches_its_formula_and_differs_from_sandwich_by_the_embedding_norm():
    torch.manual_seed(4)
    peri = Encoder(DIM, DEPTH, HEADS, norm_position="peri").eval()
    with torch.no_grad():  # non-trivial norm gains so that each norm is visible
        for p in peri.parameters():
            if p.ndim == 2:  # (members, n): biases, gains and shifts
                p.normal_()
    x = torch.randn(B, T, DIM) * 3 + 1
    h = peri.embed_norm(x)
    for block in peri.blocks:
        for sub in (block.attn, block.ffn):
            h = h + sub.norm_out(sub.fn(sub.norm_in(h)))
    torch.testing.assert_close(peri(x), peri.norm(h))
    sandwich = Encoder(DIM, DEPTH, HEADS, norm_position="sandwich").eval()
    state = {k: v for k, v in peri.state_dict().items() if not k.startswith("embed_norm.")}
    sandwich.load_state_dict(state)  # same parameters but the embedding norm
    torch.testing.assert_close(peri(x), sandwich(peri.embed_norm(x)))
    assert not torch.allclose(peri(x), sandwich(x))


TASKS = ["image_digits", "nlp_charlm", "nlp_listops", "speech_synth"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["admin", "peri_ln"])
@pytest.mark.parametrize("task", TASKS)
def test_new_variants_train_on_every_embedded_task(task, variant, compose_cfg, tmp_path):
    from resnorm.training.run import run_job  # lazy: Lightning loads only for slow tests

    cfg = compose_cfg(f"task={task}", f"variant={variant}", "trainer.max_steps=4",
                      "task.val_every=4", "logger=none", "model.depth=2")  # fmt: skip
    summary = run_job(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["steps"] == 4
    assert summary["variant"] == variant and summary["model"]["depth"] == 2
    assert summary["metrics"] and all(math.isfinite(v) for v in summary["metrics"].values())
    if variant == "admin":  # the checkpoint holds the profiled ω, not Post-LN's 1
        ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
        omegas = [v for k, v in ckpt["state_dict"].items() if k.endswith("skip.omega")]
        assert len(omegas) == 4 and not torch.equal(omegas[-1], torch.ones_like(omegas[-1]))
