"""A variant carries its own rules: a new residual mode or norm position is one class.

The toy classes below are defined and registered here, as a user would in their own module;
the Encoder and the harness's model builder honour their hooks with no other change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import FrozenInstanceError, asdict, fields
from typing import Any

import pytest
import torch
from torch import nn

from resnorm.models import (
    RESIDUALS,
    SUBLAYERS,
    Attention,
    BlockConfig,
    Encoder,
    FeedForward,
    ProfiledInit,
    Residual,
    Sublayer,
    profile_init,
)
from resnorm.training.builders import block_config, build_datamodule, build_model
from resnorm.training.validate import check_config

DIM, HEADS, DEPTH, B, T = 16, 2, 3, 2, 5


class HalfSkip(Residual, ProfiledInit):
    """x·g + f/2: its own position rule, its own branch init, its own data-dependent init."""

    requires_position = ("out_only", "none")
    branch_calls: list[type] = []

    def __init__(self, dim: int, depth: int, **_: Any) -> None:
        super().__init__(dim, depth)
        self.gain = nn.Parameter(torch.ones(()))
        self._shared: dict[str, Any] | None = None

    def init_branch(self, fn: Any) -> None:
        HalfSkip.branch_calls.append(type(fn))
        with torch.no_grad():
            for w in fn.value_output_weights():
                w.zero_()

    def begin_profile(self, shared: dict[str, Any]) -> None:
        self._shared = shared

    def end_profile(self) -> None:
        self._shared = None

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        if self._shared is not None:  # unit-variance skip path at init, counted in order
            self.gain.fill_(1.0 / float(x.std()))
            self._shared["seen"] = self._shared.get("seen", 0) + 1
        return x * self.gain + 0.5 * f


class OutOnly(Sublayer):
    """skip(x, N(F(x))): a norm on the branch output only, a norm on the stack's input."""

    embed_norm = True

    def __init__(self, fn: nn.Module, skip: nn.Module, make_norm: Any) -> None:
        super().__init__(fn, skip, make_norm)
        self.norm = make_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x, self.norm(self.fn(x)))


@pytest.fixture
def toys() -> Iterator[None]:
    RESIDUALS.register("half")(HalfSkip)
    SUBLAYERS.register("out_only")(OutOnly)
    HalfSkip.branch_calls.clear()
    try:
        yield
    finally:
        RESIDUALS.unregister("half")
        SUBLAYERS.unregister("out_only")


def test_the_encoder_honours_a_new_modes_init_and_a_new_positions_norms(toys):
    torch.manual_seed(0)
    enc = Encoder(DIM, DEPTH, HEADS, residual="half", norm_position="out_only")
    # init_branch ran once per sublayer, attention before FFN, block by block
    assert HalfSkip.branch_calls == [Attention, FeedForward] * DEPTH
    assert isinstance(enc.embed_norm, nn.LayerNorm) and isinstance(enc.norm, nn.Identity)
    x = torch.randn(B, T, DIM) * 3 + 1
    # zeroed value/output weights: each branch is N(0) = 0, so only the embedding norm acts
    torch.testing.assert_close(enc(x), enc.embed_norm(x))
    with torch.no_grad():  # now the formula, term by term, with non-trivial weights
        for p in enc.parameters():
            p.normal_(std=0.3)
    h = enc.embed_norm(x)
    for block in enc.blocks:
        for sub in (block.attn, block.ffn):
            h = h * sub.skip.gain + 0.5 * sub.norm(sub.fn(h))
    torch.testing.assert_close(enc(x), h)


def test_a_new_modes_data_dependent_init_runs_in_forward_order(toys):
    torch.manual_seed(1)
    enc = Encoder(DIM, DEPTH, HEADS, residual="half", norm_position="none").train()
    x = torch.randn(B, T, DIM) * 4
    assert profile_init(enc, x)
    assert enc.training and all(m.training for m in enc.modules())  # modes restored
    first = enc.blocks[0].attn.skip
    assert first.gain.item() == pytest.approx(1.0 / x.std().item(), rel=1e-6)
    assert first._shared is None  # finalised: later forwards change nothing
    y = enc(x)
    assert torch.equal(enc(x), y)


def test_a_new_modes_position_rule_is_checked_by_the_config(toys):
    with pytest.raises(ValueError) as info:
        BlockConfig(dim=DIM, heads=HEADS, residual="half", norm_position="pre")
    assert str(info.value) == (
        "model.residual=half requires model.norm_position=out_only|none (got 'pre'); "
        "allowed: out_only, none"
    )


def test_the_harness_builds_a_new_variant_with_no_other_change(toys, compose_cfg):
    cfg = compose_cfg("model.residual=half", "model.norm_position=out_only", "model.depth=2")
    check_config(cfg)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    model = build_model(cfg.model, dm.spec)
    assert isinstance(model.encoder.blocks[1].ffn, OutOnly)
    assert isinstance(model.encoder.blocks[1].ffn.skip, HalfSkip)
    x, _ = next(iter(dm.train_dataloader()))
    assert torch.isfinite(model(x)).all()


def test_block_config_is_the_one_declaration():
    names = [f.name for f in fields(BlockConfig)]
    assert names == [
        "dim", "depth", "heads", "ffn_mult", "residual", "norm_position", "norm", "norm_eps",
        "dropout", "causal", "activation", "attn_scale", "qk_norm", "layerscale_init",
    ]  # fmt: skip
    cfg = BlockConfig(dim=32, depth=2, heads=4)
    with pytest.raises(FrozenInstanceError):
        cfg.depth = 3  # type: ignore[misc]
    # Encoder(cfg) and the documented keyword form build the same thing
    assert Encoder(cfg).config == Encoder(dim=32, depth=2, heads=4).config == cfg
    with pytest.raises(TypeError):
        Encoder(cfg, depth=3)


@pytest.mark.parametrize("value,expected", [(True, "on"), (False, "off"), ("on", "on")])
def test_yaml_bare_on_off_become_residual_names(value, expected):
    assert BlockConfig(residual=value).residual == expected


def test_the_hydra_model_config_maps_onto_block_config(compose_cfg):
    cfg = compose_cfg("variant=no_residual", "model.depth=3")
    block = block_config(cfg.model)
    assert block.residual == "off" and block.depth == 3 and block.norm_position == "pre"
    # every block field is a key of the model config (variant and compile are the harness's)
    assert set(asdict(block)) - {"causal"} <= set(cfg.model)
    assert set(cfg.model) - set(asdict(block)) == {"variant", "compile"}
