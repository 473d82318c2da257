"""Liveness of trials: a worker killed mid-trial must not leave its trial RUNNING forever.

While a worker runs trials it beats for them every ``interval`` seconds; before asking
for a new trial, every worker fails the RUNNING trials whose last beat is older than the
grace period. RDBStorage has this built in (``heartbeat_interval`` / ``grace_period`` and
``optuna.storages.fail_stale_trials``). JournalStorage has no heartbeat in Optuna 5, so
for it the beat is a trial system attribute holding the wall-clock time, with the same
rule. Both then mark the dead run's summary.json ``failed`` when it is reachable.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Iterable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

BEAT_ATTR = "resnorm:heartbeat"  # trial system attr (journal storages): time.time() of last beat


def record_beat(storage: BaseStorage, trial_id: int) -> None:
    """One beat for one trial; a trial that another worker already failed is left alone."""
    try:
        if isinstance(storage, RDBStorage):
            if storage.get_heartbeat_interval() is not None:
                storage.record_heartbeat(trial_id)
        else:
            storage.set_trial_system_attr(trial_id, BEAT_ATTR, time.time())
    except (UpdateFinishedTrialError, KeyError):
        pass


class Heartbeat:
    """Beat for a set of trials from a background thread while a batch runs."""

    def __init__(self, storage: BaseStorage, trial_ids: Iterable[int], interval: float) -> None:
        self.storage, self.trial_ids, self.interval = storage, list(trial_ids), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="optuna-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for trial_id in self.trial_ids:
                record_beat(self.storage, trial_id)

    def __enter__(self) -> Heartbeat:
        for trial_id in self.trial_ids:
            record_beat(self.storage, trial_id)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fail_stale_trials(study: optuna.Study, storage: BaseStorage, grace_period: float) -> list[int]:
    """Fail RUNNING trials whose worker stopped beating; return their numbers."""
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return []
    if isinstance(storage, RDBStorage):
        with warnings.catch_warnings():  # "fail_stale_trials is experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # no-op without heartbeat_interval
    else:
        now = time.time()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            start = t.datetime_start.timestamp() if t.datetime_start else now
            last = t.system_attrs.get(BEAT_ATTR, start)
            if now - last > grace_period:
                with contextlib.suppress(UpdateFinishedTrialError):  # another worker was first
                    storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    after = {t.number: t for t in study.get_trials(deepcopy=False)}
    return sorted(n for n in running if after[n].state == TrialState.FAIL)
