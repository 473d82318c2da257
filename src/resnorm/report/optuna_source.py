"""Optuna storages as a report source: trials -> run rows, plus per-study sections with a
Pareto front of accuracy vs instability and parameter importances.

A trial whose ``run_dir`` user attr still holds a summary.json is read from that file
(the record); otherwise its row is built from the trial's params and user attrs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from resnorm.outputs import SUMMARY, read_summary
from resnorm.report.load import enrich, summary_row
from resnorm.report.sources import ReportError

STATE_STATUS = {
    "COMPLETE": "completed",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
    "WAITING": "running",
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
INSTABILITY = "instability"


def open_storage(url: str) -> Any:
    """A storage object for the URL; a missing SQLite file is an error, not a new database."""
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

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
    s["status"] = attrs.get("status") or STATE_STATUS.get(trial.state.name, "failed")
    s["metrics"] = dict(attrs.get("metrics") or {})
    s["stability"] = {k: attrs[k] for k in ("spike_count", "diverged_at_step") if k in attrs}
    s.update({k: attrs[k] for k in ("steps", "wall_s", "error") if k in attrs})
    s.setdefault("run_key", f"{study_name}#{trial.number}")
    row = summary_row(s, str(run_dir or f"{study_name}#{trial.number}"), f"optuna:{study_name}")
    row.update(trial=trial.number, study=study_name)
    return row


def load_storage(url: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """Rows of every trial of every study in the storage, and the studies themselves."""
    import optuna

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


def _instability(trial: Any, names: list[str]) -> float:
    if INSTABILITY in names and trial.values:
        return float(trial.values[names.index(INSTABILITY)])
    value = (trial.user_attrs or {}).get(INSTABILITY)
    return float(value) if isinstance(value, int | float) else math.nan


def objective_names(study: Any) -> list[str]:
    names = list(getattr(study, "metric_names", None) or [])
    return names or [f"objective {i}" for i in range(len(study.directions))]


def pareto_mask(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Points no other point beats on both (higher score, lower cost)."""
    keep = np.ones(len(score), dtype=bool)
    for i in range(len(score)):
        better = (score >= score[i]) & (cost <= cost[i]) & ((score > score[i]) | (cost < cost[i]))
        keep[i] = not better.any()
    return keep


def sections(studies: list[Any], out: Path) -> list:
    from resnorm.report.build import OptunaSection

    return [study_section(s, out, OptunaSection) for s in studies]


def study_section(study: Any, out: Path, make: Any) -> Any:
    """Facts, Pareto front and importances of one study (each only when the data allow)."""
    from collections import Counter

    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    names = objective_names(study)
    counts = Counter(t.state.name.lower() for t in trials)
    dirs = ", ".join(f"{d.name.lower()} {n}" for d, n in zip(study.directions, names, strict=True))
    sec = make(
        study.study_name,
        "",
        [
            f"{len(trials)} trials: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
            f"objectives: {dirs}",
        ],
    )
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    score_idx = next((i for i, n in enumerate(names) if n != INSTABILITY), 0)
    maximize = study.directions[score_idx].name == "MAXIMIZE"
    pts = [(t.values[score_idx], _instability(t, names), t.number) for t in done]
    pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
    safe = "".join(c if c.isalnum() else "_" for c in study.study_name)
    if len(pts) >= 2:
        from resnorm.report.figures_optuna import pareto_figure

        score = np.array([p[0] if maximize else -p[0] for p in pts])
        cost = np.array([p[1] for p in pts])
        front = pareto_mask(score, cost)
        sec.lines.append(
            f"Pareto front ({names[score_idx]} vs instability): trials "
            + ", ".join(f"#{p[2]}" for p, f in zip(pts, front, strict=True) if f)
        )
        sec.figs.append(pareto_figure(pts, front, names[score_idx], out, f"pareto_{safe}"))
    else:
        sec.lines.append(
            "Pareto front: needs ≥ 2 completed trials with an instability value "
            "(objective or user attr 'instability')"
        )
    sec.lines += importances(study, done, names, out, safe, sec.figs)
    return sec


def importances(
    study: Any, done: list, names: list[str], out: Path, safe: str, figs: list
) -> list[str]:
    """optuna.importance (fANOVA) per objective; a study too small for it is said so."""
    import optuna

    params = {k for t in done for k in t.params}
    varied = [p for p in params if len({repr(t.params.get(p)) for t in done}) > 1]
    if len(done) < 4 or not varied:
        return [
            f"parameter importances: not computed ({len(done)} completed trials, "
            f"{len(varied)} varied parameters; needs ≥ 4 and ≥ 1)"
        ]
    lines, result = [], {}
    for i, name in enumerate(names):
        try:
            imp = optuna.importance.get_param_importances(
                study, target=(lambda t, i=i: t.values[i]) if len(names) > 1 else None
            )
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            lines.append(f"parameter importances for {name}: not computed ({exc})")
            continue
        result[name] = imp
        lines.append(
            f"parameter importances for {name} (fANOVA): "
            + ", ".join(f"{k} {v:.2f}" for k, v in imp.items())
        )
    if result:
        from resnorm.report.figures_optuna import importance_figure

        figs.append(importance_figure(result, out, f"importance_{safe}"))
    return lines
