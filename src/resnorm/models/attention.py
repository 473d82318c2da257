"""Multi-head self-attention through ``F.scaled_dot_product_attention``."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from resnorm.models.dropout import MemberDropout
from resnorm.models.layers import Linear
from resnorm.models.norms import LayerNorm


class Attention(nn.Module):
    """Fused-QKV attention with optional QK-norm and an unscaled-logit ablation.

    ``attn_scale=False`` drops the 1/√d_k factor (the seed article's formula).
    ``qk_norm`` applies a LayerNorm over each head's queries and keys (Dehghani et al. 2023).
    x is (members, B, T, dim), or any (..., T, dim) for one member; the members of a pack
    are folded into the batch of ``scaled_dot_product_attention``.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        causal: bool = False,
        attn_scale: bool = True,
        qk_norm: bool = False,
        norm_eps: float = 1e-5,
        members: int = 1,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.causal = causal
        self.members = members
        self.scale = self.head_dim**-0.5 if attn_scale else 1.0
        self.qkv = Linear(dim, 3 * dim, members=members)
        self.proj = Linear(dim, dim, members=members)
        self.attn_drop = MemberDropout(dropout, members)  # on the attention probabilities
        self.proj_drop = MemberDropout(dropout, members)
        norm = partial(LayerNorm, self.head_dim, eps=norm_eps, members=members)
        self.q_norm = norm() if qk_norm else nn.Identity()
        self.k_norm = norm() if qk_norm else nn.Identity()

    # What an initialisation hook (a residual mode's ``init_branch``) may re-initialise,
    # as (members, dim, dim) views of the fused projection, so nothing outside knows its layout.
    def query_key_weights(self) -> tuple[torch.Tensor, ...]:
        q, k, _ = self.qkv.weight.view(self.members, 3, -1, self.qkv.in_features).unbind(1)
        return (q, k)

    def value_output_weights(self) -> tuple[torch.Tensor, ...]:
        _, _, v = self.qkv.weight.view(self.members, 3, -1, self.qkv.in_features).unbind(1)
        return (v, self.proj.weight)

    def _norm_heads(self, norm: nn.Module, t: torch.Tensor) -> torch.Tensor:
        if self.members == 1 or isinstance(norm, nn.Identity):
            return norm(t)
        # each member's own gains: the member dimension leads again for the norm
        return norm(t.view(self.members, -1, *t.shape[1:])).view(t.shape)

    def qkv_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., T, dim) -> q, k, v each (N, heads, T, head_dim) with N the product of the
        leading dimensions (members folded into the batch), QK-norm applied."""
        t = x.shape[-2]
        qkv = self.qkv(x).view(-1, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv
        return self._norm_heads(self.q_norm, q), self._norm_heads(self.k_norm, k), v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_heads(x)
        if self.attn_drop.active:
            y = self._dropped_attention(q, k, v)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scale)
        return self.proj_drop(self.proj(y.transpose(1, 2).reshape(x.shape)))

    def _dropped_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """Attention with each member's dropout on its probabilities: SDPA's own dropout
        draws from torch's global generator, one stream for the whole pack."""
        probs = self._logits(q, k).softmax(-1)
        if self.members > 1:  # the member dimension leads again for the dropout
            probs = self.attn_drop(probs.view(self.members, -1, *probs.shape[1:]))
            return probs.view(-1, *probs.shape[2:]) @ v
        return self.attn_drop(probs) @ v

    @torch.no_grad()
    def attention_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax logits (..., heads, T, T) for x (..., T, dim), -inf where causal.

        For probes only."""
        q, k, _ = self.qkv_heads(x)
        logits = self._logits(q, k)
        return logits.view(*x.shape[:-2], *logits.shape[1:])

    def _logits(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        logits = (q @ k.transpose(-2, -1)) * self.scale
        if self.causal:
            t = q.shape[-2]
            mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
            logits = logits.masked_fill(mask, float("-inf"))
        return logits
