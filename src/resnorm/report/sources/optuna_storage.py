"""Optuna storages as a report source: every trial of every study -> a run row (the study
sections of the report are drawn by ``figures.optuna_study``).

A trial whose ``run_dir`` user attr still holds a summary.json is read from that file
(the record); otherwise its row is built from the trial's params and user attrs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resnorm.outputs import COMPLETED, FAILED, PRUNED, RUNNING, SUMMARY, read_summary
from resnorm.report.sources.classify import ReportError
from resnorm.report.sources.rows import summary_row
from resnorm.report.sources.run_dirs import enrich

STATE_STATUS = {
    "COMPLETE": COMPLETED,
    "PRUNED": PRUNED,
    "FAIL": FAILED,
    "RUNNING": RUNNING,
    "WAITING": RUNNING,
}
# Hydra override names of the sweep space -> summary keys
PARAM_KEYS = {
    "variant": "variant",
    "task": "task",
    "seed": "seed",
    "model.depth": "depth",
    "model.dim": "dim",
    "model.residual": "residual",
    "model.norm_position": "norm_position",
    "model.norm": "norm",
    "optim.lr": "lr",
    "optim.warmup_steps": "warmup_steps",
}


def open_storage(url: str) -> Any:
    """A storage object for the URL; a missing SQLite file is an error, not a new database."""
    import optuna  # lazy: about a second to import, paid only by reports of a storage

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend  # lazy: as optuna above

        path = Path(url.removeprefix("journal:").removeprefix("//"))
        if not path.is_file():
            raise ReportError(f"Optuna journal {path} does not exist")
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ReportError(f"Optuna storage {path} does not exist")
    try:
        return optuna.storages.RDBStorage(url, skip_table_creation=True)
    except Exception as exc:  # unreachable server, wrong driver, not an Optuna database
        raise ReportError(f"cannot open Optuna storage {url}: {str(exc).splitlines()[0]}") from exc


def trial_row(trial: Any, study_name: str) -> dict[str, Any]:
    """One run row for a trial: from its summary.json if present, else from attrs/params."""
    attrs = trial.user_attrs or {}
    run_dir = attrs.get("run_dir")
    if run_dir and (Path(run_dir) / SUMMARY).is_file():
        try:
            s = read_summary(run_dir)
        except ValueError:
            s = None
        if s is not None:
            row = enrich(summary_row(s, str(run_dir), f"optuna:{study_name}"), Path(run_dir))
            row.update(trial=trial.number, study=study_name)
            return row
    s: dict[str, Any] = {PARAM_KEYS.get(k, k): v for k, v in trial.params.items()}
    s["status"] = attrs.get("status") or STATE_STATUS.get(trial.state.name, FAILED)
    s["metrics"] = dict(attrs.get("metrics") or {})
    s["stability"] = {k: attrs[k] for k in ("spike_count", "diverged_at_step") if k in attrs}
    s.update({k: attrs[k] for k in ("steps", "wall_s", "error") if k in attrs})
    s.setdefault("run_key", f"{study_name}#{trial.number}")
    row = summary_row(s, str(run_dir or f"{study_name}#{trial.number}"), f"optuna:{study_name}")
    row.update(trial=trial.number, study=study_name)
    return row


def load_storage(url: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """Rows of every trial of every study in the storage, and the studies themselves."""
    import optuna  # lazy: see open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    try:
        names = optuna.study.get_all_study_names(storage)
    except Exception as exc:
        raise ReportError(f"cannot read Optuna storage {url}: {str(exc).splitlines()[0]}") from exc
    if not names:
        raise ReportError(f"Optuna storage {url} holds no study")
    studies = [optuna.load_study(study_name=n, storage=storage) for n in names]
    rows = [trial_row(t, s.study_name) for s in studies for t in s.get_trials(deepcopy=False)]
    return rows, studies
