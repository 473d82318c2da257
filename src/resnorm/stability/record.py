"""What a run's stability instrumentation records: the probe records, the scalars of
``summary.json["stability"]``, the content of ``stability.json`` and the per-layer scalars
for the loggers.

Shaping only: the probe functions measure, the training callback decides when; the
records here are plain dicts and lists, so they go into JSON and checkpoints as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from resnorm.stability.grads import grad_norm_profile, update_to_weight_ratio
from resnorm.stability.probes import forward_probe
from resnorm.stability.step_monitor import StepMonitor

STABILITY_SCHEMA = 1

LossFn = Callable[[nn.Module, Any], torch.Tensor]


@dataclass
class ProbeLog:
    """The probes of one run: their schedule, the full probes at initialisation and at
    the end, the periodic ones in between, and the seconds they all took."""

    enabled: bool = True
    every: int = 50
    batch_size: int = 64
    init: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def due(self, step: int) -> bool:
        """Whether the periodic probe runs after optimizer step ``step``."""
        return self.enabled and step % self.every == 0

    # ``final`` is not saved: it is taken once training has ended
    def state_dict(self) -> dict[str, Any]:
        return {"init": self.init, "history": self.history, "probe_seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.init, self.history = state["init"], list(state["history"])
        self.seconds = float(state["probe_seconds"])


def full_probe(model: nn.Module, loss_fn: LossFn, batch: Any, step: int) -> dict[str, Any]:
    """Gradient profile and forward probe on the fixed batch (at init and at the end)."""
    profile = grad_norm_profile(model, loss_fn, batch)
    loss = profile.pop("loss")
    record = {"step": step, "loss": loss, "grad_norm": profile}
    record.update(forward_probe(model, batch[0]))
    return record


def step_probe(
    model: nn.Module,
    inputs: torch.Tensor,
    step: int,
    layer_grads: dict[str, list[float]],
    before: list[list[torch.Tensor]],
) -> dict[str, Any]:
    """A periodic probe: the step's per-layer gradient norms (taken before the update),
    its update-to-weight ratios against ``before``, and a forward probe on ``inputs``."""
    record = {"step": step, "grad_norm": layer_grads,
              "update_ratio": update_to_weight_ratio(model, before)}  # fmt: skip
    record.update(forward_probe(model, inputs))
    return record


def phase_scalars(record: dict[str, Any], phase: str) -> dict[str, float]:
    """A few headline numbers from a full probe: the Xiong et al. gradient ratio, the last
    layer's token similarity and stream scale, the attention extremes."""
    ffn = record["grad_norm"]["ffn"]
    return {
        f"{phase}_grad_ffn_last_over_first": ffn[-1] / ffn[0] if ffn[0] else math.nan,
        f"{phase}_token_cosine_last": record["token_cosine"][-1],
        f"{phase}_residual_rms_last": record["residual_rms"][-1],
        f"{phase}_attn_entropy_min": min(min(h) for h in record["attn_entropy"]),
        f"{phase}_attn_max_logit": max(max(h) for h in record["attn_max_logit"]),
    }


def probe_metrics(record: dict[str, Any]) -> dict[str, float]:
    """Per-layer scalars for the loggers (heads reduced: mean entropy, max logit)."""
    out: dict[str, float] = {}
    per_layer = {
        "grad_norm_attn": record["grad_norm"]["attn"],
        "grad_norm_ffn": record["grad_norm"]["ffn"],
        "update_ratio": record["update_ratio"],
        "token_cosine": record["token_cosine"],
        "residual_rms": record["residual_rms"],
        "attn_entropy": [sum(h) / len(h) for h in record["attn_entropy"]],
        "attn_max_logit": [max(h) for h in record["attn_max_logit"]],
    }
    for name, values in per_layer.items():
        for i, v in enumerate(values):
            out[f"stability/{name}/layer{i:02d}"] = v
    return out


def summary_scalars(monitor: StepMonitor, probes: ProbeLog) -> dict[str, Any]:
    """Scalars for ``summary.json["stability"]``."""
    g, d = monitor.grad, monitor.divergence
    out: dict[str, Any] = {
        "diverged": monitor.diverged,
        "diverged_at_step": d.diverged_at_step,
        "divergence_reason": d.reason,
        "initial_loss": d.initial_loss,
        "smoothed_loss": d.smoothed_loss,
        "spike_count": monitor.spikes.count,
        "first_spike_step": monitor.spikes.steps[0] if monitor.spikes.steps else None,
        "grad_norm_max": g.max if g.count else None,
        "grad_norm_mean": g.mean,
        "grad_norm_last": g.last,
        "probes": probes.enabled,
        "probe_every": probes.every,
        "probe_count": len(probes.history),
        "probe_wall_s": probes.seconds,
    }
    ratios = [r for rec in probes.history for r in rec["update_ratio"]]
    out["update_ratio_max"] = max(ratios) if ratios else None
    for phase, rec in (("init", probes.init), ("final", probes.final)):
        if rec is not None:
            out.update(phase_scalars(rec, phase))
    return out


def stability_json(monitor: StepMonitor, probes: ProbeLog) -> dict[str, Any]:
    """The content of ``stability.json``: per-layer arrays at init, during, and at the end."""
    probe = probes.init or probes.final or {}
    d = monitor.divergence
    return {
        "schema": STABILITY_SCHEMA,
        "depth": len(probe.get("token_cosine", [])) or None,
        "heads": len(probe["attn_entropy"][0]) if probe else None,
        "probe_every": probes.every if probes.enabled else None,
        "probe_batch_size": probes.batch_size,
        "thresholds": monitor.thresholds,
        "divergence": {
            "diverged": monitor.diverged,
            "step": d.diverged_at_step,
            "reason": d.reason,
            "initial_loss": d.initial_loss,
        },
        "loss_spikes": {"count": monitor.spikes.count, "steps": monitor.spikes.steps},
        "init": probes.init,
        "final": probes.final,
        "history": probes.history,
    }
