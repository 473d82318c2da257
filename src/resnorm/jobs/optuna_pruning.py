"""Pruning from inside a job: report the validation metric to the trial, stop when told.

The sweeper asks Optuna for a trial and passes its coordinates to the job as config
(``+optuna.trial=<number> +optuna.storage=<url> +optuna.study_name=<name>
+optuna.metric=val/acc +optuna.direction=maximize +optuna.pruner={name:median,...}``).
The job opens the same storage, reports the metric at every validation with
``step = global_step`` and, when the pruner says so, stops training cleanly: run.py then
writes ``status: pruned`` with ``pruned_at_step``, and the sweeper tells the trial PRUNED.

Multi-objective studies cannot prune (Optuna has no intermediate values for them): the
callback then does nothing. Only rank 0 talks to the storage; the decision is broadcast.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import optuna
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from optuna.exceptions import UpdateFinishedTrialError

from resnorm.jobs.member_metrics import member_key
from resnorm.jobs.optuna_pruners import build_pruner
from resnorm.jobs.optuna_storage import close_storage, open_storage

log = logging.getLogger("resnorm")


class OptunaPruningCallback(pl.Callback):
    def __init__(
        self,
        storage: str,
        study_name: str,
        trial: int,
        metric: str = "val/acc",
        direction: str | None = None,
        pruner: Mapping[str, Any] | str | None = None,
    ) -> None:
        self.storage_url, self.study_name, self.trial_number = storage, study_name, int(trial)
        self.metric, self.direction, self.pruner_spec = metric, direction, pruner
        self.pruned = False
        self.pruned_at_step: int | None = None
        self._storage: optuna.storages.BaseStorage | None = None
        self._trial: optuna.Trial | None = None
        self._active = True

    @classmethod
    def from_config(cls, cfg: DictConfig) -> OptunaPruningCallback:
        """From the ``optuna`` node the sweeper adds to each job's config."""
        o = cfg.optuna
        missing = [k for k in ("trial", "storage", "study_name") if OmegaConf.select(o, k) is None]
        if missing:
            raise ValueError(f"optuna.trial is set but optuna.{missing[0]} is missing")
        pruner = OmegaConf.select(o, "pruner")
        if isinstance(pruner, DictConfig):
            pruner = OmegaConf.to_container(pruner, resolve=True)
        return cls(
            storage=o.storage, study_name=o.study_name, trial=o.trial,
            metric=OmegaConf.select(o, "metric", default="val/acc"),
            direction=OmegaConf.select(o, "direction"), pruner=pruner,
        )  # fmt: skip

    def _open(self) -> optuna.Trial | None:
        if self._trial is not None or not self._active:
            return self._trial
        self._storage = open_storage(self.storage_url)
        study = optuna.load_study(
            study_name=self.study_name, storage=self._storage,
            sampler=optuna.samplers.RandomSampler(), pruner=build_pruner(self.pruner_spec),
        )  # fmt: skip
        if len(study.directions) > 1:
            self._active = False  # Optuna does not prune multi-objective studies
            return None
        if self.direction and study.direction.name.lower() != self.direction.lower():
            raise ValueError(
                f"optuna.direction={self.direction} but study {self.study_name!r} is "
                f"{study.direction.name.lower()}"
            )
        study_id = self._storage.get_study_id_from_name(self.study_name)
        trial_id = self._storage.get_trial_id_from_study_id_trial_number(
            study_id, self.trial_number
        )
        self._trial = optuna.Trial(study, trial_id)
        return self._trial

    def _report(self, trainer: pl.Trainer) -> bool:
        """Report this validation's metric; True when the trial should stop."""
        # a single run is member 0 of a pack of one (resnorm.jobs.member_metrics)
        value = trainer.callback_metrics.get(member_key(0, self.metric))
        if value is None:
            if self._active:
                log.warning("optuna pruning: metric %r was not logged; not reporting", self.metric)
            self._active = False
            return False
        value = float(value)
        trial = self._open()
        if trial is None or not math.isfinite(value):
            return False  # a non-finite metric is the stability monitor's call, not the pruner's
        try:
            trial.report(value, step=trainer.global_step)
            return trial.should_prune()
        except UpdateFinishedTrialError:
            # the trial was closed elsewhere (e.g. failed as stale): keep training, stop reporting
            self._active, self._trial = False, None
            return False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned:
            return
        stop = self._report(trainer) if trainer.is_global_zero and self._active else False
        if trainer.world_size > 1:
            stop = trainer.strategy.broadcast(stop, src=0)
        if stop:
            self.pruned, self.pruned_at_step = True, trainer.global_step
            trainer.should_stop = True
            log.info("optuna: trial %d pruned at step %d", self.trial_number, trainer.global_step)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._storage is not None:
            close_storage(self._storage)
            self._storage, self._trial = None, None
