"""Multi-head self-attention through ``F.scaled_dot_product_attention``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Fused-QKV attention with optional QK-norm and an unscaled-logit ablation.

    ``attn_scale=False`` drops the 1/√d_k factor (the seed article's formula).
    ``qk_norm`` applies a LayerNorm over each head's queries and keys (Dehghani et al. 2023).
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
    ) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.causal = causal
        self.scale = self.head_dim**-0.5 if attn_scale else 1.0
        self.attn_dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()

    # What an initialisation hook (a residual mode's ``init_branch``) may re-initialise,
    # as (dim, dim) views of the fused projection, so nothing outside knows its layout.
    def query_key_weights(self) -> tuple[torch.Tensor, ...]:
        q, k, _ = self.qkv.weight.view(3, -1, self.qkv.in_features)
        return (q, k)

    def value_output_weights(self) -> tuple[torch.Tensor, ...]:
        _, _, v = self.qkv.weight.view(3, -1, self.qkv.in_features)
        return (v, self.proj.weight)

    def qkv_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, dim) -> q, k, v each (B, heads, T, head_dim), QK-norm applied."""
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return self.q_norm(q), self.k_norm(k), v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv_heads(x)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            dropout_p=self.attn_dropout if self.training else 0.0,
            is_causal=self.causal,
            scale=self.scale,
        )
        return self.proj_drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))

    @torch.no_grad()
    def attention_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax logits (B, heads, T, T), masked with -inf where causal. For probes only."""
        q, k, _ = self.qkv_heads(x)
        logits = (q @ k.transpose(-2, -1)) * self.scale
        if self.causal:
            t = x.shape[1]
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            logits = logits.masked_fill(mask, float("-inf"))
        return logits
