"""Where an Optuna study lives, written as one URL that every worker and job can open.

- ``null``: ``sqlite:///<sweep dir>/optuna.db`` (one file beside the trials);
- ``sqlite:///path.db``, ``postgresql://user@host/db`` or any SQLAlchemy URL: RDBStorage,
  with Optuna's heartbeat so a killed worker's trial is failed by the others;
- ``journal:///abs/path.log`` or ``journal://rel/path.log``: JournalStorage on a
  JournalFileBackend (an append-only log; no database needed, works on NFS).

Relative paths are made absolute before jobs see them (a job may run elsewhere). A password
in the URL is refused: it would be copied into every job's config and summary. Use
``PGPASSWORD`` or ``~/.pgpass`` instead. Opening a URL is shared with the jobs
(``resnorm.jobs.optuna_storage``); creating the study is the sweeper's.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from resnorm.jobs.optuna_storage import JOURNAL, journal_path, retry

DEFAULT_DB = "optuna.db"


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
    from sqlalchemy.engine import make_url  # lazy: ~0.2 s, only for database URLs

    if make_url(url).password:
        raise ValueError(
            "the Optuna storage URL holds a password, which would be written into every "
            "job's config; put it in PGPASSWORD or ~/.pgpass and drop it from the URL"
        )


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
