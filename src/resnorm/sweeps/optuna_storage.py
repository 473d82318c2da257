"""Where an Optuna study lives, written as one URL that every worker and job can open.

- ``null``: ``sqlite:///<sweep dir>/optuna.db`` (one file beside the trials);
- ``sqlite:///path.db``, ``postgresql://user@host/db`` or any SQLAlchemy URL: RDBStorage,
  with Optuna's heartbeat so a killed worker's trial is failed by the others;
- ``journal:///abs/path.log`` or ``journal://rel/path.log``: JournalStorage on a
  JournalFileBackend (an append-only log; no database needed, works on NFS).

Relative paths are made absolute before jobs see them (a job may run elsewhere). A password
in the URL is refused: it would be copied into every job's config and summary. Use
``PGPASSWORD`` or ``~/.pgpass`` instead.
"""

from __future__ import annotations

import os
import shlex
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

JOURNAL = "journal://"
DEFAULT_DB = "optuna.db"
SQLITE_TIMEOUT_S = 60  # concurrent writers wait for the file lock instead of failing


def resolve_storage_url(url: str | None, sweep_dir: str | os.PathLike[str]) -> str:
    """The storage URL with relative file paths made absolute; the sweep's SQLite by default."""
    if not url:
        return f"sqlite:///{Path(sweep_dir).resolve() / DEFAULT_DB}"
    if url.startswith(JOURNAL):
        return JOURNAL + str(Path(url[len(JOURNAL) :]).expanduser().resolve())
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path and path != ":memory:" and not path.startswith("/"):
            return f"sqlite:///{Path(path).resolve()}"
        return url
    check_no_password(url)
    return url


def check_no_password(url: str) -> None:
    from sqlalchemy.engine import make_url

    if make_url(url).password:
        raise ValueError(
            "the Optuna storage URL holds a password, which would be written into every "
            "job's config; put it in PGPASSWORD or ~/.pgpass and drop it from the URL"
        )


def journal_path(url: str) -> str | None:
    """The log file of a ``journal://`` URL, or None for other storages."""
    return url[len(JOURNAL) :] if url.startswith(JOURNAL) else None


def open_storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
) -> BaseStorage:
    """Open ``url``; RDB storages get Optuna's heartbeat when ``heartbeat_interval`` is set
    (journal storages have none in Optuna 5: see ``optuna_heartbeat``)."""
    path = journal_path(url)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        db = url.split(":///", 1)[-1]
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        engine_kwargs["pool_pre_ping"] = True
    with warnings.catch_warnings():  # "heartbeat_interval is an experimental feature"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return retry(
            lambda: RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
            )
        )


def close_storage(storage: BaseStorage) -> None:
    """Release database connections (a job opens its own storage and should not leak it)."""
    if isinstance(storage, RDBStorage):
        storage.remove_session()
        storage.engine.dispose()


def retry(make: Any, attempts: int = 5, wait_s: float = 0.5) -> Any:
    """Call ``make()``, retrying a few times: workers starting together race to create the
    same tables or study, and the loser sees a transient integrity or lock error."""
    import sqlalchemy.exc

    for i in range(attempts):
        try:
            return make()
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
            if i == attempts - 1:
                raise
            time.sleep(wait_s * (i + 1))
    raise AssertionError("unreachable")


def create_or_load_study(
    storage: BaseStorage,
    study_name: str,
    directions: list[str],
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """The named study, created on first use; a relaunch (or a second worker) continues it.

    An existing study must have the same objectives: continuing a different one would
    mix incomparable values."""
    study = retry(
        lambda: optuna.create_study(
            storage=storage, study_name=study_name, directions=directions, sampler=sampler,
            pruner=pruner, load_if_exists=True,
        )
    )  # fmt: skip
    have = [d.name.lower() for d in study.directions]
    if have != [d.lower() for d in directions]:
        raise ValueError(
            f"study {study_name!r} already exists with directions {have}, not {directions}; "
            "choose another hydra.sweeper.study_name"
        )
    return study


def dashboard_command(url: str) -> str:
    """The shell command that opens this storage in optuna-dashboard."""
    path = journal_path(url)
    return f"optuna-dashboard {shlex.quote(path if path is not None else url)}"
