"""Forward probes on a fixed batch: rank collapse, residual-stream scale, attention stats.

Hooks are attached only for the duration of one probe forward pass, so the training
forward pays nothing for them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from resnorm.models.block import Block
from resnorm.stability.layers import SUBLAYER_NAMES, block_attention, find_blocks, probe_mode


def token_cosine_similarity(hidden: torch.Tensor) -> torch.Tensor:
    """Mean pairwise cosine similarity between distinct tokens, averaged over the batch.

    1 means every token carries the same direction: rank collapse (Dong et al. 2021).
    Uses |Σ u_i|² = Σ_ij u_i·u_j over unit vectors u, so it costs O(T·dim), not O(T²·dim).
    """
    if hidden.ndim != 3 or hidden.shape[1] < 2:
        raise ValueError(f"expected (batch, tokens >= 2, dim) hidden states, got {hidden.shape}")
    u = F.normalize(hidden.float(), dim=-1)
    t = u.shape[1]
    all_pairs = u.sum(dim=1).square().sum(dim=-1)  # (B,)
    self_pairs = u.square().sum(dim=(1, 2))  # T, less any all-zero tokens
    return ((all_pairs - self_pairs) / (t * (t - 1))).mean()


def residual_rms(hidden: torch.Tensor) -> torch.Tensor:
    """Root mean square of the residual stream: how its scale grows (or not) with depth."""
    return hidden.float().square().mean().sqrt()


def attention_stats(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-head attention entropy (nats, mean over batch and queries) and max logit.

    ``logits`` are pre-softmax, (B, heads, T, T), -inf where masked. Entropy collapse
    (Zhai et al. 2023) and logit growth (Dehghani et al. 2023) both show up here;
    uniform attention over T keys has entropy log T.
    """
    if logits.ndim != 4:
        raise ValueError(f"expected (batch, heads, T, T) logits, got {tuple(logits.shape)}")
    logits = logits.float()
    p = logits.softmax(dim=-1)
    entropy = -torch.xlogy(p, p).sum(dim=-1)  # masked keys have p = 0 and add 0
    return {"entropy": entropy.mean(dim=(0, 2)), "max_logit": logits.amax(dim=(0, 2, 3))}


def sublayer_fns(block: Block) -> list[nn.Module]:
    """Each sublayer's F (attention, then the MLP), in forward order: its input is the tensor
    that sublayer computes on, after its input norm where it has one."""
    return [getattr(block, name).fn for name in SUBLAYER_NAMES]


def forward_probe(model: nn.Module, inputs: Any) -> dict[str, Any]:
    """Run ``model(inputs)`` once in probe mode and measure every block on the way.

    Returns per-layer lists (block outputs, input side first): ``token_cosine``,
    ``residual_rms``, and per-layer-per-head ``attn_entropy`` and ``attn_max_logit``;
    ``sublayer_input_rms``, per layer the RMS of what attention and the MLP are fed
    ([attn, ffn]: after the sublayer's input norm where it has one, else the stream itself);
    plus ``token_cosine_input`` for the stack's input.
    """
    blocks = find_blocks(model)
    keys = ("token_cosine", "residual_rms", "attn_entropy", "attn_max_logit", "input", "fed")
    stats: dict[str, list[torch.Tensor]] = {k: [] for k in keys}

    # A task model's blocks see (1, B, T, dim): its member dimension of one joins the batch.
    def on_block_input(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if not stats["input"]:
            stats["input"].append(token_cosine_similarity(args[0].flatten(0, -3)))

    def on_block_output(_: nn.Module, __: Any, out: torch.Tensor) -> None:
        stats["token_cosine"].append(token_cosine_similarity(out.flatten(0, -3)))
        stats["residual_rms"].append(residual_rms(out))

    def on_attention_input(attn: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        a = attention_stats(attn.attention_logits(args[0]).flatten(0, -4))
        stats["attn_entropy"].append(a["entropy"])
        stats["attn_max_logit"].append(a["max_logit"])

    # the input of each sublayer's F: what the claim "LayerNorm keeps the layers' inputs
    # stable" is about (the residual stream is what a pre-norm block normalizes away)
    def on_sublayer_input(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        stats["fed"].append(residual_rms(args[0]))

    handles = [blocks[0].register_forward_pre_hook(on_block_input)]
    for block in blocks:
        handles.append(block.register_forward_hook(on_block_output))
        handles.append(block_attention(block).register_forward_pre_hook(on_attention_input))
        for fn in sublayer_fns(block):
            handles.append(fn.register_forward_pre_hook(on_sublayer_input))
    try:
        with probe_mode(model), torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    # one device -> host transfer for everything
    host = {k: torch.stack(v).cpu().tolist() for k, v in stats.items()}
    host["token_cosine_input"] = host.pop("input")[0]
    fed, k = host.pop("fed"), len(SUBLAYER_NAMES)  # forward order: block 0's sublayers, ...
    host["sublayer_input_rms"] = [fed[i : i + k] for i in range(0, len(fed), k)]
    return host
