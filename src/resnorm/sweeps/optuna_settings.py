"""The options of the ``resnorm_optuna`` Hydra sweeper (``hydra.sweeper.*``).

Kept free of heavy imports: Hydra imports the plugin, and with it this module, at the
start of every ``resnorm train``, sweep or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _default_objectives() -> list[dict[str, str]]:
    return [{"metric": "val_best/acc", "direction": "maximize"}]


@dataclass
class OptunaSweepSettings:
    # Study: one name in one storage; relaunching (or a second worker) continues it.
    study_name: str = "resnorm"
    storage: Any = None  # null: sqlite:///<hydra.sweep.dir>/optuna.db; journal:///x.log; RDB URL
    # Trials: the study ends when n_trials are COMPLETE or PRUNED (all workers together).
    n_trials: int = 20
    n_jobs: int = 1  # trials launched together (run in parallel by a parallel launcher)
    # Objectives: summary.json metrics (val_best/acc, test/acc, ...) or "instability".
    objectives: Any = field(default_factory=_default_objectives)
    report_metric: Any = "val/acc"  # logged metric reported at each validation; null: none
    sampler: Any = field(default_factory=lambda: {"name": "tpe"})
    pruner: Any = field(default_factory=lambda: {"name": "median"})
    params: Any = None  # {config key: sweep text}, see resnorm.sweeps.optuna_space
    enqueue: Any = None  # [{key: value, ...}]: trials to run first (once per study)
    on_diverged: str = "prune"  # prune | fail: the state of a trial whose run diverged
    # Liveness: a worker beats every heartbeat_interval s; silent for grace_period s = dead.
    heartbeat_interval: int = 10
    grace_period: int = 60
    max_failed_trials: Any = None  # stop when more trials failed (null: n_trials)
    wait_for_running: bool = True  # at the end, wait for other workers' running trials
