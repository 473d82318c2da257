"""The Optuna sweep loop behind the ``resnorm_optuna`` Hydra sweeper: ask, launch, tell.

Each worker (one ``resnorm train -m hparams_search=...`` process) repeats:

1. fail the trials of dead workers (no heartbeat for ``grace_period`` seconds);
2. stop once COMPLETE + PRUNED + RUNNING trials reach ``n_trials`` (all workers and
   earlier launches count, so a relaunch continues the study; FAIL trials do not count,
   so a killed trial is run again), after waiting for other workers' running trials;
3. ask for up to ``n_jobs`` trials. Two workers asking at once could overshoot: a trial
   whose rank among the counted trials is above ``n_trials`` is not run but told FAIL
   with ``user_attrs["surplus"]``;
4. launch them through Hydra's launcher, each in ``<sweep dir>/trial_<number>`` with
   ``+optuna.*`` overrides so the job can report to the trial and be pruned, beating
   for them meanwhile; with ``pack=k``, ``n_jobs`` x k trials are asked and trained as
   packs of up to k compatible trials (``resnorm.sweeps.pack_sweep``), unpruned;
5. read each job's summary.json and tell the trial its state and values
   (``resnorm.sweeps.optuna_outcome``).

Nothing a job does (fail, diverge, crash before writing a summary) stops the study.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from resnorm.jobs.optuna_pruners import build_pruner
from resnorm.jobs.optuna_storage import open_storage
from resnorm.sweeps.optuna_factories import build_sampler, grid_size
from resnorm.sweeps.optuna_heartbeat import Heartbeat, fail_stale_trials
from resnorm.sweeps.optuna_outcome import (
    mark_run_failed,
    outcome_from_summary,
    parse_objectives,
    read_job_summary,
)
from resnorm.sweeps.optuna_pareto import format_results
from resnorm.sweeps.optuna_settings import OptunaSweepSettings
from resnorm.sweeps.optuna_space import (
    format_override,
    params_as_overrides,
    parse_search_space,
)
from resnorm.sweeps.optuna_storage import (
    create_or_load_study,
    dashboard_command,
    resolve_storage_url,
)
from resnorm.sweeps.pack_sweep import Packer

log = logging.getLogger("resnorm")

Launch = Callable[[Sequence[Sequence[str]], int], Sequence[JobReturn]]
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def write_text_atomic(path: Path, text: str) -> None:
    """Workers sharing a sweep dir rewrite the same file: never leave half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def trial_subdir(number: int) -> str:
    return f"trial_{number:04d}"


def tell(
    study: optuna.Study, trial: optuna.Trial, values: list[float] | None, state: TrialState
) -> None:
    """Tell, tolerating a trial already closed elsewhere (failed as stale) and the grid
    sampler's "grid exhausted" signal, which ask/tell cannot honour (the trial is stored)."""
    try:
        study.tell(trial, values, state, skip_if_finished=True)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


class OptunaSweep:
    """One worker of a study. ``launch(batch, initial_job_idx)`` is Hydra's launcher; a
    ``packer`` launches the trials of a batch as packs instead."""

    def __init__(
        self,
        settings: OptunaSweepSettings,
        config: DictConfig,
        launch: Launch,
        packer: Packer | None = None,
    ) -> None:
        self.s, self.config, self.launch, self.packer = settings, config, launch, packer
        self.per_batch = settings.n_jobs * (packer.size if packer and packer.size else 1)
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        self.objectives = parse_objectives(settings.objectives)
        self.names = [o.metric for o in self.objectives]
        self.job_idx = 0
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    # ---- set-up ---------------------------------------------------------------------
    def open(self, arguments: Sequence[str]) -> optuna.Study:
        s = self.s
        self.space = parse_search_space([*params_as_overrides(s.params or {}), *arguments])
        self.url = resolve_storage_url(s.storage, self.sweep_dir)
        if s.grace_period <= s.heartbeat_interval:
            raise ValueError("hydra.sweeper.grace_period must exceed heartbeat_interval")
        self.storage = open_storage(self.url, s.heartbeat_interval, s.grace_period)
        build_pruner(s.pruner)  # fail on a bad pruner here, not inside every job
        sampler = build_sampler(s.sampler, self.space.distributions)
        directions = [o.direction for o in self.objectives]
        study = create_or_load_study(self.storage, s.study_name, directions, sampler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(self.names)
        self.n_trials = s.n_trials
        grid = grid_size(s.sampler, self.space.distributions)
        if grid is not None and grid < self.n_trials:
            log.info("grid sampler: %d points, so %d trials", grid, grid)
            self.n_trials = grid
        self.enqueue(study)
        return study

    def enqueue(self, study: optuna.Study) -> None:
        """Enqueue ``hydra.sweeper.enqueue`` trials once per study (keys outside the search
        space become plain overrides of that trial, e.g. ``optim.grad_clip: null``)."""
        existing = [t.system_attrs.get("fixed_params") for t in study.get_trials(deepcopy=False)]
        for params in self.s.enqueue or []:
            params = OmegaConf.to_container(params) if isinstance(params, DictConfig) else params
            if dict(params) not in existing:
                study.enqueue_trial(dict(params))

    # ---- the loop -------------------------------------------------------------------
    def run(self, arguments: Sequence[str]) -> optuna.Study:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
        study = self.open(arguments)
        print(f"resnorm optuna: study {self.s.study_name!r} in {self.url} (worker {self.worker})")
        while True:
            self.fail_dead_trials(study)
            trials = study.get_trials(deepcopy=False)
            self.check_failures(trials)
            todo = self.n_trials - sum(t.state in COUNTED for t in trials)
            if todo <= 0:
                if self.s.wait_for_running and any(t.state == TrialState.RUNNING for t in trials):
                    time.sleep(min(self.s.heartbeat_interval, 5))
                    continue
                break
            with warnings.catch_warnings():  # we beat ourselves: ask/tell is meant here
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
                batch = [
                    study.ask(self.space.distributions) for _ in range(min(self.per_batch, todo))
                ]
            batch = [t for t in batch if not self.is_surplus(study, t)]
            if batch:
                self.run_batch(study, batch)
        print(format_results(study, self.names))
        print(f"resnorm optuna: inspect with `{dashboard_command(self.url)}`")
        return study

    def fail_dead_trials(self, study: optuna.Study) -> None:
        for number in fail_stale_trials(study, self.storage, self.s.grace_period):
            t = study.get_trials(deepcopy=False)[number]
            run_dir = t.user_attrs.get("run_dir")
            reason = f"worker {t.user_attrs.get('worker', '?')} stopped beating (killed?)"
            if run_dir:
                mark_run_failed(run_dir, reason)
            print(f"resnorm optuna: trial {number} failed: {reason}")

    def check_failures(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        limit = self.s.max_failed_trials
        limit = self.n_trials if limit is None else int(limit)
        failed = [
            t for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get("surplus")
        ]
        if len(failed) > limit:
            raise RuntimeError(
                f"{len(failed)} trials of study {self.s.study_name!r} failed (more than "
                f"hydra.sweeper.max_failed_trials={limit}); see their summary.json"
            )

    def is_surplus(self, study: optuna.Study, trial: optuna.Trial) -> bool:
        """True (and the trial told FAIL) when other workers already fill ``n_trials``."""
        trials = study.get_trials(deepcopy=False)
        rank = sum(t.state in COUNTED for t in trials if t.number <= trial.number)
        if rank <= self.n_trials:
            return False
        trial.set_user_attr("surplus", True)
        tell(study, trial, None, TrialState.FAIL)
        return True

    # ---- one batch ------------------------------------------------------------------
    def job_overrides(self, trial: optuna.Trial) -> list[str]:
        params = dict(trial.params)
        fixed = self.storage.get_trial(trial._trial_id).system_attrs.get("fixed_params", {})
        extra = {k: v for k, v in fixed.items() if k not in params}
        o = [*self.space.overrides({**params, **extra})]
        o.append(f"hydra.sweep.subdir={trial_subdir(trial.number)}")
        optuna_cfg = {"trial": trial.number, "storage": self.url, "study_name": self.s.study_name}
        if self.s.report_metric and len(self.objectives) == 1:
            optuna_cfg["metric"] = self.s.report_metric
            optuna_cfg["direction"] = self.objectives[0].direction
        o.extend(format_override(f"+optuna.{k}", v) for k, v in optuna_cfg.items())
        pruner = self.s.pruner
        pruner = OmegaConf.to_container(pruner) if isinstance(pruner, DictConfig) else pruner
        if pruner:
            o.append(format_override("+optuna.pruner", pruner))
        return o

    def run_batch(self, study: optuna.Study, trials: list[optuna.Trial]) -> None:
        ids = [t._trial_id for t in trials]
        try:
            for t in trials:
                t.set_user_attr("worker", self.worker)
                t.set_user_attr("run_dir", str(self.sweep_dir / trial_subdir(t.number)))
            batch = [self.job_overrides(t) for t in trials]
            with Heartbeat(self.storage, ids, self.s.heartbeat_interval):
                run = self.packer.run if self.packer else self.launch
                returns = run(batch, self.job_idx)
            self.job_idx += len(batch)
            for trial, ret in zip(trials, returns, strict=True):
                self.tell(study, trial, ret)
        finally:  # an exception or Ctrl-C: what was not told is a failure, not RUNNING forever
            for t in trials:
                if self.storage.get_trial(t._trial_id).state == TrialState.RUNNING:
                    tell(study, t, None, TrialState.FAIL)

    def tell(self, study: optuna.Study, trial: optuna.Trial, ret: JobReturn) -> None:
        hydra_cfg = ret.hydra_cfg
        run_dir = OmegaConf.select(hydra_cfg, "hydra.runtime.output_dir") if hydra_cfg else None
        run_dir = run_dir or trial.user_attrs["run_dir"]
        outcome = outcome_from_summary(
            read_job_summary(run_dir), self.objectives, self.s.on_diverged
        )
        if ret.status == JobStatus.FAILED and not outcome.message:
            outcome.message = f"{type(ret._return_value).__name__}: {ret._return_value}"
        attrs = {**outcome.attrs, **({"message": outcome.message} if outcome.message else {})}
        try:
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
        except UpdateFinishedTrialError:
            log.warning("trial %d was closed by another worker before its result", trial.number)
        tell(study, trial, outcome.values, outcome.state)
        values = " ".join(
            f"{n}={v:.4g}" for n, v in zip(self.names, outcome.values or [], strict=False)
        )
        print(
            f"resnorm optuna: trial {trial.number} {outcome.state.name.lower()} {values} "
            f"{outcome.message} [{run_dir}]".replace("  ", " ")
        )
