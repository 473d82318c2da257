"""The block zoo against independent references: torch's own layer and the formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import rounding_tol
from resnorm.models import NORMS, RESIDUALS, SUBLAYERS, Block, Encoder

DIM, HEADS, T, B = 32, 4, 7, 3


def copy_into_torch_layer(block: Block, layer: nn.TransformerEncoderLayer) -> None:
    attn, ffn = block.attn.fn, block.ffn.fn
    with torch.no_grad():
        # our parameters carry a leading member dimension: member 0 is the model
        layer.self_attn.in_proj_weight.copy_(attn.qkv.weight[0])
        layer.self_attn.in_proj_bias.copy_(attn.qkv.bias[0])
        layer.self_attn.out_proj.weight.copy_(attn.proj.weight[0])
        layer.self_attn.out_proj.bias.copy_(attn.proj.bias[0])
        layer.linear1.weight.copy_(ffn.fc1.weight[0])
        layer.linear1.bias.copy_(ffn.fc1.bias[0])
        layer.linear2.weight.copy_(ffn.fc2.weight[0])
        layer.linear2.bias.copy_(ffn.fc2.bias[0])
        for ours, theirs in ((block.attn.norm, layer.norm1), (block.ffn.norm, layer.norm2)):
            ours.weight.normal_()
            ours.bias.normal_()
            theirs.weight.copy_(ours.weight[0])
            theirs.bias.copy_(ours.bias[0])


@pytest.mark.parametrize("position", ["post", "pre"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("causal", [False, True])
def test_block_matches_torch_transformer_encoder_layer(position, activation, causal):
    torch.manual_seed(0)
    block = Block(DIM, HEADS, ffn_mult=2, norm_position=position, activation=activation,
                  causal=causal).eval()  # fmt: skip
    for m in block.modules():  # non-trivial biases so that every term is exercised
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.bias, std=0.1)
    layer = nn.TransformerEncoderLayer(
        DIM, HEADS, dim_feedforward=2 * DIM, dropout=0.0, activation=activation,
        batch_first=True, norm_first=position == "pre",
    ).eval()  # fmt: skip
    copy_into_torch_layer(block, layer)
    x = torch.randn(B, T, DIM)
    mask = nn.Transformer.generate_square_subsequent_mask(T) if causal else None
    expected = layer(x, src_mask=mask, is_causal=causal)
    # the same math; torch's layer may take a fused path that sums in another order
    torch.testing.assert_close(block(x), expected, **rounding_tol(expected, 64))


def reference_sublayer(position, residual, x, f, n1, n2, alpha=None):
    """The design table, written out with plain callables."""
    combine = {
        "on": lambda a, b: a + b,
        "off": lambda a, b: b,
        "rezero": lambda a, b: a + alpha * b,
        "layerscale": lambda a, b: a + alpha * b,
        "deepnorm": lambda a, b: alpha * a + b,
        "admin": lambda a, b: a * alpha + b,
    }[residual]
    if position == "post":
        return n1(combine(x, f(x)))
    if position == "pre":
        return combine(x, f(n1(x)))
    if position in ("sandwich", "peri"):
        return combine(x, n2(f(n1(x))))
    return combine(x, f(x))


def manual_norm(name, eps):
    def ln(y, w, b):
        mu = y.mean(-1, keepdim=True)
        var = ((y - mu) ** 2).mean(-1, keepdim=True)
        return (y - mu) / torch.sqrt(var + eps) * w + b

    def rms(y, w, b):
        return y / torch.sqrt((y**2).mean(-1, keepdim=True) + eps) * w

    def uncentered(y, w, b):
        mu = y.mean(-1, keepdim=True)
        var = ((y - mu) ** 2).mean(-1, keepdim=True)
        return y / torch.sqrt(var + eps) * w + b

    return {"layernorm": ln, "rmsnorm": rms, "uncentered_ln": uncentered}[name]


@pytest.mark.parametrize("name", ["layernorm", "rmsnorm", "uncentered_ln", "dyt"])
def test_norm_formulas(name):
    torch.manual_seed(1)
    eps = 1e-5
    norm = NORMS.get(name)(DIM, eps=eps)
    with torch.no_grad():
        for p in norm.parameters():
            p.normal_()
    x = torch.randn(B, T, DIM) * 3 + 2
    if name == "dyt":
        expected = torch.tanh(norm.alpha * x) * norm.weight + norm.bias
    else:
        bias = getattr(norm, "bias", None)
        expected = manual_norm(name, eps)(x, norm.weight, bias)
    torch.testing.assert_close(norm(x), expected, **rounding_tol(expected, 16))  # dim-term sums


def test_uncentered_ln_differs_from_layernorm_on_shifted_input():
    x = torch.randn(B, T, DIM) + 5.0
    ln, un = NORMS.get("layernorm")(DIM), NORMS.get("uncentered_ln")(DIM)
    assert (ln(x).mean(-1).abs() < 1e-5).all()
    assert (un(x).mean(-1) > 1.0).all()  # the mean survives: the seed article's formula


VARIANTS = [
    (pos, res)
    for pos in ("post", "pre", "sandwich", "peri", "none")
    for res in ("on", "off", "rezero", "layerscale")
] + [("post", "deepnorm"), ("post", "admin")]


@pytest.mark.parametrize("position,residual", VARIANTS)
@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_every_variant_matches_its_formula(position, residual, norm):
    torch.manual_seed(2)
    depth = 3
    block = Block(DIM, HEADS, residual=residual, norm_position=position, norm=norm,
                  depth=depth).eval()  # fmt: skip
    for sub in (block.attn, block.ffn):
        with torch.no_grad():
            for p in sub.skip.parameters():  # make rezero / layerscale / admin non-trivial
                p.normal_()
            for m in sub.modules():  # the norms' gains, (members, dim)
                if m is not sub.fn and hasattr(m, "weight") and m.weight.ndim == 2:
                    m.weight.normal_()
    x = torch.randn(B, T, DIM)
    h = x
    for sub in (block.attn, block.ffn):
        alpha = {
            "rezero": getattr(sub.skip, "alpha", None),
            "layerscale": getattr(sub.skip, "gamma", None),
            "deepnorm": (2 * depth) ** 0.25,
            "admin": getattr(sub.skip, "omega", None),
        }.get(residual)
        norms = [getattr(sub, n) for n in ("norm", "norm_in", "norm_out") if hasattr(sub, n)]
        n1 = norms[0] if norms else None
        n2 = norms[-1] if len(norms) == 2 else None
        h = reference_sublayer(position, residual, h, sub.fn, n1, n2, alpha)
    torch.testing.assert_close(block(x), h, **rounding_tol(h, 16))  # the same ops, reordered


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts():
    base = Block(DIM, HEADS, residual="on", norm_position="none")
    assert count(Block(DIM, HEADS, residual="off", norm_position="none")) == count(base)
    assert count(Block(DIM, HEADS, residual="rezero", norm_position="none")) == count(base) + 2
    assert (
        count(Block(DIM, HEADS, residual="layerscale", norm_position="none"))
        == count(base) + 2 * DIM
    )
    # each LayerNorm is 2·dim (γ, β): two per block for pre/post, four for sandwich
    assert count(Block(DIM, HEADS, norm_position="pre")) == count(base) + 2 * 2 * DIM
    assert count(Block(DIM, HEADS, norm_position="post")) == count(base) + 2 * 2 * DIM
    assert count(Block(DIM, HEADS, norm_position="sandwich")) == count(base) + 4 * 2 * DIM
    assert count(Block(DIM, HEADS, norm_position="peri")) == count(base) + 4 * 2 * DIM
    # Admin's ω is one per-channel vector per sublayer
    admin = Block(DIM, HEADS, residual="admin", norm_position="post")
    assert count(admin) == count(base) + 2 * 2 * DIM + 2 * DIM
    assert count(Block(DIM, HEADS, norm_position="pre", norm="rmsnorm")) == count(base) + 2 * DIM
    for sub in (base.attn, base.ffn):
        assert count(sub.skip) == 0  # the identity residual owns nothing
    # pre-LN encoders carry one more LayerNorm after the stack
    enc = Encoder(DIM, 3, HEADS, norm_position="pre")
    assert count(enc) == 3 * count(Block(DIM, HEADS, norm_position="pre")) + 2 * DIM
    # Peri-LN adds the embedding-output norm to sandwich's final norm
    peri = Encoder(DIM, 3, HEADS, norm_position="peri")
    assert count(peri) == 3 * count(Block(DIM, HEADS, norm_position="peri")) + 2 * 2 * DIM


def test_rezero_block_is_identity_at_init():
    block = Block(DIM, HEADS, residual="rezero", norm_position="none")
    x = torch.randn(B, T, DIM)
    assert torch.equal(block(x), x)
    enc = Encoder(DIM, 4, HEADS, residual="rezero", norm_position="none")
    assert torch.equal(enc(x), x)


@pytest.mark.parametrize("position", ["pre", "post", "sandwich", "peri", "none"])
def test_causal_outputs_never_depend_on_the_future(position):
    torch.manual_seed(3)
    enc = Encoder(DIM, 3, HEADS, norm_position=position, causal=True).eval()
    x = torch.randn(B, T, DIM)
    y = enc(x)
    for t in range(T):
        x2 = x.clone()
        x2[:, t] += torch.randn(B, DIM) * 10
        y2 = enc(x2)
        torch.testing.assert_close(y2[:, :t], y[:, :t], **rounding_tol(y, 16))
        assert not torch.allclose(y2[:, t:], y[:, t:])


def test_unscaled_attention_drops_the_sqrt_dk_factor():
    torch.manual_seed(4)
    scaled = Block(DIM, HEADS, norm_position="none").attn.fn
    unscaled = Block(DIM, HEADS, norm_position="none", attn_scale=False).attn.fn
    unscaled.load_state_dict(scaled.state_dict())
    x = torch.randn(B, T, DIM)
    ratio = unscaled.attention_logits(x) / scaled.attention_logits(x)
    torch.testing.assert_close(ratio, torch.full_like(ratio, math.sqrt(DIM // HEADS)))


def test_deepnorm_constants_and_init():
    depth = 6
    enc = Encoder(DIM, depth, HEADS, residual="deepnorm", norm_position="post")
    assert enc.blocks[0].attn.skip.alpha.item() == pytest.approx((2 * depth) ** 0.25)
    plain = Encoder(DIM, depth, HEADS, residual="on", norm_position="post")
    beta = (8 * depth) ** -0.25
    # β-scaled branch init: FFN weights are β times smaller in scale than plain Xavier
    ours = torch.stack([b.ffn.fn.fc2.weight.std() for b in enc.blocks]).mean()
    theirs = torch.stack([b.ffn.fn.fc2.weight.std() for b in plain.blocks]).mean()
    assert (ours / theirs).item() == pytest.approx(beta, rel=0.1)


def test_deepnorm_init_draws_in_the_fixed_order():
    """Xavier-uniform on every Linear, then per block q, k, v, proj, fc1, fc2 Xavier-normal:
    the same seed must give the same weights as this written-out order."""
    depth = 3
    torch.manual_seed(5)
    enc = Encoder(DIM, depth, HEADS, residual="deepnorm", norm_position="post")
    torch.manual_seed(5)
    ref = Encoder(DIM, depth, HEADS, residual="on", norm_position="post")
    beta = (8 * depth) ** -0.25
    with torch.no_grad():
        for block in ref.blocks:
            attn, ffn = block.attn.fn, block.ffn.fn  # member 0's (out, in) weights
            q, k, v = attn.qkv.weight[0].view(3, DIM, DIM)
            nn.init.xavier_normal_(q)
            nn.init.xavier_normal_(k)
            for w in (v, attn.proj.weight[0], ffn.fc1.weight[0], ffn.fc2.weight[0]):
                nn.init.xavier_normal_(w, gain=beta)
    ours, theirs = enc.state_dict(), ref.state_dict()
    assert list(ours) == list(theirs)
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name


def test_deepnorm_position_rule_message_is_exact():
    with pytest.raises(ValueError) as info:
        Encoder(DIM, 2, HEADS, residual="deepnorm", norm_position="pre")
    assert str(info.value) == (
        "model.residual=deepnorm requires model.norm_position=post (got 'pre'); allowed: post"
    )


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"residual": "deepnorm", "norm_position": "pre"}, "model.residual=deepnorm requires"),
        ({"heads": 5, "dim": 64}, "model.heads=5 must divide model.dim=64"),
        ({"depth": 0}, "model.depth=0 must be a positive integer"),
        ({"norm": "banana"}, "model.norm='banana' is not a valid choice; allowed: dyt"),
        ({"residual": "sideways"}, "model.residual='sideways'"),
        ({"norm_position": "middle"}, "allowed: none, peri, post, pre, sandwich"),
        ({"residual": "admin", "norm_position": "pre"}, "model.residual=admin requires"),
        ({"activation": "tanhh"}, "model.activation='tanhh'"),
        ({"dropout": 1.5}, "model.dropout=1.5"),
    ],
)
def test_invalid_options_fail_at_construction(kwargs, fragment):
    args = {"dim": DIM, "depth": 2, "heads": HEADS, **kwargs}
    with pytest.raises(ValueError, match=None) as info:
        Encoder(**args)
    assert fragment in str(info.value)


def test_registries_list_every_design_option():
    assert set(RESIDUALS.names()) == {"on", "off", "rezero", "layerscale", "deepnorm", "admin"}
    assert set(SUBLAYERS.names()) == {"pre", "post", "sandwich", "peri", "none"}
    assert set(NORMS.names()) == {"layernorm", "rmsnorm", "dyt", "uncentered_ln"}


def test_layernorm_eps_is_configurable():
    enc = Encoder(DIM, 1, HEADS, norm_position="post", norm_eps=1e-12)
    assert enc.blocks[0].attn.norm.eps == 1e-12
