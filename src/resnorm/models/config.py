"""The one declaration of a block's options: ``BlockConfig``, validated once when built.

Every key list of model options elsewhere (the Hydra model config, summaries, reports) is
derived from its fields (``dataclasses.fields(BlockConfig)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from resnorm.models.feedforward import ACTIVATIONS
from resnorm.models.norms import NORMS
from resnorm.models.residual import RESIDUALS
from resnorm.models.sublayer import SUBLAYERS


@dataclass(frozen=True)
class BlockConfig:
    """Options of a Block and of the Encoder stacking ``depth`` of them.

    Invalid combinations fail here, at construction, with one line naming the option and
    what it allows; the modules built from a BlockConfig trust it.
    """

    dim: int = 64
    depth: int = 6
    heads: int = 4
    ffn_mult: float = 4
    residual: str = "on"  # on | off | rezero | layerscale | deepnorm | admin
    norm_position: str = "pre"  # pre | post | sandwich | peri | none
    norm: str = "layernorm"  # layernorm | rmsnorm | dyt | uncentered_ln
    norm_eps: float = 1e-5
    dropout: float = 0.0
    causal: bool = False
    activation: str = "gelu"  # gelu | relu | silu
    attn_scale: bool = True  # False drops 1/sqrt(d_k) (the seed article's formula)
    qk_norm: bool = False
    layerscale_init: float = 0.1

    def __post_init__(self) -> None:
        # YAML 1.1 (PyYAML, Hydra) reads a bare on/off as a boolean: the one place it is undone.
        if isinstance(self.residual, bool):
            object.__setattr__(self, "residual", "on" if self.residual else "off")
        self._validate()

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BlockConfig:
        """The block fields of a larger mapping (a Hydra ``model`` node also holds ``variant``
        and ``compile``); fields it does not set keep their defaults."""
        return cls(**{k: options[k] for k in cls.names() if k in options})

    def _validate(self) -> None:
        skip = RESIDUALS.get(self.residual)
        SUBLAYERS.get(self.norm_position)
        NORMS.get(self.norm)
        ACTIVATIONS.get(self.activation)
        for name in ("dim", "depth", "heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{name}={value!r} must be a positive integer")
        if self.dim % self.heads:
            raise ValueError(f"model.heads={self.heads} must divide model.dim={self.dim}")
        if not self.ffn_mult > 0 or int(self.dim * self.ffn_mult) < 1:
            raise ValueError(f"model.ffn_mult={self.ffn_mult!r} must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout={self.dropout!r} must be in [0, 1)")
        if not self.norm_eps > 0:
            raise ValueError(f"model.norm_eps={self.norm_eps!r} must be positive")
        if not is_positive_number(self.layerscale_init):
            # LayerScale's per-channel λ starts small and positive (CaiT: 0.1 to 1e-6); a NaN
            # or inf start poisons every step, and a zero start is residual=rezero's job
            raise ValueError(
                f"model.layerscale_init={self.layerscale_init!r} must be a positive finite "
                "number (e.g. 0.1 or 1e-5)"
            )
        allowed = skip.requires_position
        if allowed is not None and self.norm_position not in allowed:
            raise ValueError(
                f"model.residual={self.residual} requires model.norm_position={'|'.join(allowed)}"
                f" (got {self.norm_position!r}); allowed: {', '.join(allowed)}"
            )


def is_positive_number(value: object) -> bool:
    """A finite number above 0 (not a bool, a string or NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value > 0
