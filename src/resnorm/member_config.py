"""What one member of a pack may set on its own: one frozen record, validated once.

A pack trains k runs of one architecture in one process (docs/sweeps.md "Packed runs"). The
members share parameter shapes, data and the training loop; each has its own seed,
optimizer options, dropout rate and stability thresholds, and trains with exactly those.
From these records derive the config paths that may differ inside a pack (``MEMBER_KEYS``),
the optimizer's options and defaults (``training.optim``, ``training.packed_optim``) and each
member's stability monitor (``training.stability_callback``).

Torch-free: the sweeper groups jobs with it before anything heavy is imported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from numbers import Integral, Real
from typing import Any

from resnorm.outputs import RUN_ONLY_KEYS

SCHEDULES = ("cosine", "linear", "constant")
MAX_SEED = 2**32 - 1  # numpy's seed range, which Lightning's seed_everything enforces


def _real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class OptimOptions:
    """AdamW with linear warmup, then a cosine, linear or constant decay; global-norm
    clipping (``grad_clip=None``: none). The fields are the ``optim.*`` config keys."""

    lr: float
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        # a list from YAML is kept as a tuple; its length is checked below
        if isinstance(self.betas, Sequence) and not isinstance(self.betas, str | tuple):
            object.__setattr__(self, "betas", tuple(self.betas))
        # nan and inf fail here, not as a "divergence" a few steps into training
        if not _real(self.lr) or not self.lr > 0:
            raise ValueError(f"optim.lr={self.lr!r} must be a positive finite number")
        if not _real(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(
                f"optim.weight_decay={self.weight_decay!r} must be a finite number >= 0"
            )
        b = self.betas
        if not (isinstance(b, tuple) and len(b) == 2 and all(_real(x) and 0 <= x < 1 for x in b)):
            raise ValueError(f"optim.betas={_show(b)} must be two numbers in [0, 1)")
        if not _real(self.eps) or not self.eps > 0:
            raise ValueError(f"optim.eps={self.eps!r} must be a positive finite number")
        if not _integer(self.warmup_steps) or self.warmup_steps < 0:
            raise ValueError(f"optim.warmup_steps={self.warmup_steps!r} must be an integer >= 0")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"optim.schedule={self.schedule!r} is not a valid choice; allowed: "
                f"{', '.join(SCHEDULES)}"
            )
        if not _real(self.min_lr_ratio) or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"optim.min_lr_ratio={self.min_lr_ratio!r} must be in [0, 1]")
        if self.grad_clip is not None and not (_real(self.grad_clip) and self.grad_clip > 0):
            raise ValueError(f"optim.grad_clip={self.grad_clip!r} must be positive or null")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The options a config may leave out, with their values."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    @classmethod
    def from_config(cls, optim: Mapping[str, Any]) -> OptimOptions:
        return cls(**{k: optim[k] for k in cls.names() if k in optim})

    def adamw(self) -> dict[str, Any]:
        """The keyword options of ``training.optim.build_optimizer`` (all but clipping)."""
        return {k: getattr(self, k) for k in self.names() if k != "grad_clip"}


@dataclass(frozen=True)
class StabilityThresholds:
    """When a run counts as diverged and which steps are loss spikes (``stability.*``;
    what each means: conf/stability/default.yaml)."""

    divergence_loss_multiple: float | None = 3.0
    divergence_smoothing: float = 0.9
    spike_multiple: float = 2.0
    spike_window: int = 50
    spike_min_history: int = 10
    spike_min_rise: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "divergence_loss_multiple":
                continue
            if not _real(value):
                raise ValueError(f"stability.{f.name}={value!r} must be a finite number")
        if self.divergence_loss_multiple is not None and not self.divergence_loss_multiple > 1:
            raise ValueError(
                f"stability.divergence_loss_multiple={self.divergence_loss_multiple!r} must be > 1"
            )
        if not 0 <= self.divergence_smoothing < 1:
            raise ValueError(
                f"stability.divergence_smoothing={self.divergence_smoothing!r} must be in [0, 1)"
            )
        if not self.spike_multiple > 1:
            raise ValueError(f"stability.spike_multiple={self.spike_multiple!r} must be > 1")
        w, h = self.spike_window, self.spike_min_history
        if not (_integer(w) and _integer(h) and 1 <= h <= w):
            raise ValueError(
                f"stability.spike_window={w!r} and spike_min_history={h!r} need integers "
                "with 1 <= min_history <= window"
            )
        if not self.spike_min_rise >= 0:
            raise ValueError(f"stability.spike_min_rise={self.spike_min_rise!r} must be >= 0")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_config(cls, stability: Mapping[str, Any] | None) -> StabilityThresholds:
        stability = stability or {}
        return cls(**{k: stability[k] for k in cls.names() if k in stability})

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.names()}


@dataclass(frozen=True)
class MemberConfig:
    """Everything one member of a pack sets on its own."""

    seed: int
    optim: OptimOptions
    dropout: float = 0.0
    stability: StabilityThresholds = field(default_factory=StabilityThresholds)

    def __post_init__(self) -> None:
        if not _integer(self.seed):
            raise ValueError(f"seed={self.seed!r} must be an integer")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed={self.seed!r} must be an integer from 0 to {MAX_SEED}")
        if not (_real(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"model.dropout={self.dropout!r} must be in [0, 1)")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> MemberConfig:
        """The member record of a resolved run config (``seed``, ``optim``, ``model``,
        ``stability``); ValueError names the first bad value."""
        return cls(
            seed=cfg["seed"],
            optim=OptimOptions.from_config(cfg["optim"]),
            dropout=cfg["model"].get("dropout", 0.0),
            stability=StabilityThresholds.from_config(cfg.get("stability")),
        )


# Run-only keys that a pack applies to all of its members at once (one Trainer, one probe
# schedule): members must agree on them, so the sweeper packs runs that differ apart.
PACK_WIDE_RUN_KEYS = (
    "trainer.num_threads", "trainer.log_every", "trainer.ckpt_every", "trainer.resume",
    "trainer.ckpt_minutes", "trainer.progress",
    "stability.probes", "stability.probe_every", "stability.probe_batch_size",
)  # fmt: skip

# Config paths that may differ inside a pack: the member record's fields, the variant's
# label (two names for one block pack together) and the run-only keys each member keeps
# for itself (its loggers, directory, study bookkeeping).
MEMBER_KEYS: tuple[str, ...] = (
    "seed",
    *(f"optim.{k}" for k in OptimOptions.names()),
    "model.dropout",
    *(f"stability.{k}" for k in StabilityThresholds.names()),
    "model.variant",
    *(k for k in RUN_ONLY_KEYS if k not in PACK_WIDE_RUN_KEYS),
)


def _show(value: object) -> str:
    """A config value as the user typed it: [2, 0.9] rather than (2, 0.9)."""
    return repr(list(value)) if isinstance(value, tuple | list) else repr(value)
