"""Stability probes and metrics: plain functions over a torch module and a batch.

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

__all__ = [
    "DivergenceMonitor",
    "SpikeDetector",
    "attention_stats",
    "check_stability_options",
    "find_blocks",
    "forward_probe",
    "global_grad_norm",
    "grad_norm_profile",
    "layer_grad_norms",
    "params_finite",
    "probe_mode",
    "residual_rms",
    "snapshot_block_params",
    "token_cosine_similarity",
    "update_to_weight_ratio",
]
