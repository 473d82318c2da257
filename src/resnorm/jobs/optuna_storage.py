"""Opening an Optuna storage from its URL: what a job needs to reach its trial, and what
the sweeper opens too.

- ``sqlite:///path.db``, ``postgresql://user@host/db`` or any SQLAlchemy URL: RDBStorage,
  with Optuna's heartbeat when asked (a killed worker's trial is failed by the others);
- ``journal:///abs/path.log``: JournalStorage on a JournalFileBackend (an append-only
  log; no database needed, works on NFS).

The sweeper makes every URL absolute and password-free before a job sees it
(``resnorm.sweeps.optuna_storage``).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

JOURNAL = "journal://"
SQLITE_TIMEOUT_S = 60  # concurrent writers wait for the file lock instead of failing


def journal_path(url: str) -> str | None:
    """The log file of a ``journal://`` URL, or None for other storages."""
    return url[len(JOURNAL) :] if url.startswith(JOURNAL) else None


def open_storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
) -> BaseStorage:
    """Open ``url``; RDB storages get Optuna's heartbeat when ``heartbeat_interval`` is set
    (journal storages have none in Optuna 5: see ``resnorm.sweeps.optuna_heartbeat``)."""
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
    same tables or study, and the loser sees a transient integrity or lock error, or on
    PostgreSQL "relation ... already exists" (a ProgrammingError) from the schema race."""
    import sqlalchemy.exc  # lazy: ~0.2 s to import, and journal storages never need it

    for i in range(attempts):
        try:
            return make()
        except (
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.ProgrammingError,
        ) as exc:
            race = not isinstance(exc, sqlalchemy.exc.ProgrammingError) or (
                "already exists" in str(exc)
            )
            if i == attempts - 1 or not race:
                raise
            time.sleep(wait_s * (i + 1))
    raise AssertionError("unreachable")
