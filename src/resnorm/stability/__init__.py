"""Stability probes and metrics: plain functions over a torch module and a batch, the
per-step monitor, and the shape of what a run records.

No Lightning here; ``resnorm.training.stability_callback`` decides when they run.
"""

from resnorm.stability.divergence import DivergenceMonitor, SpikeDetector
from resnorm.stability.grads import (
    global_grad_norm,
    grad_norm_profile,
    layer_grad_norms,
    snapshot_block_params,
    update_to_weight_ratio,
)
from resnorm.stability.layers import find_blocks, params_finite, probe_mode
from resnorm.stability.options import check_stability_options
from resnorm.stability.probes import (
    attention_stats,
    forward_probe,
    residual_rms,
    token_cosine_similarity,
)
from resnorm.stability.record import (
    STABILITY_SCHEMA,
    ProbeLog,
    full_probe,
    phase_scalars,
    probe_metrics,
    stability_json,
    step_probe,
    summary_scalars,
)
from resnorm.stability.step_monitor import GradNormStats, StepMonitor

__all__ = [
    "STABILITY_SCHEMA",
    "DivergenceMonitor",
    "GradNormStats",
    "ProbeLog",
    "SpikeDetector",
    "StepMonitor",
    "attention_stats",
    "check_stability_options",
    "find_blocks",
    "forward_probe",
    "full_probe",
    "global_grad_norm",
    "grad_norm_profile",
    "layer_grad_norms",
    "params_finite",
    "phase_scalars",
    "probe_metrics",
    "probe_mode",
    "residual_rms",
    "snapshot_block_params",
    "stability_json",
    "step_probe",
    "summary_scalars",
    "token_cosine_similarity",
    "update_to_weight_ratio",
]
