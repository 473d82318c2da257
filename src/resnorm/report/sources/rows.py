"""The runs table: one pandas DataFrame row per run, from a summary (the outputs contract).

Tolerant by design: stability probes may be off, a run may have died before writing
stability.json, older summaries lack newer keys. Every missing value becomes NaN/None,
never a crash; only a summary from a *newer* schema stops the report (we would misread it).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from resnorm.outputs import COMPLETED, DIVERGED
from resnorm.report.sources.arch import arch_of

# Statuses whose results are aggregated. `running` (unfinished), `failed` and `pruned`
# (stopped early on purpose) are listed in the report but never averaged as results.
USABLE = (COMPLETED, DIVERGED)
# Columns that identify a training setting; runs paired across variants share all of them.
SETTING = ("task", "depth", "dim", "lr", "warmup_steps", "max_steps")
OBJECT_COLUMNS = ("init_probe", "final_probe", "spike_steps", "curve", "val_curve", "train_log")
# Top-level summary keys that repeat model fields: what summaries without the full block
# config (a "model" dict) say about the model beyond their config.
LEGACY_MODEL_KEYS = ("residual", "norm_position", "norm", "depth", "dim", "heads")


@dataclass
class Loaded:
    runs: pd.DataFrame
    skipped: list[str] = field(default_factory=list)  # "file: why", one per unreadable summary
    notes: list[str] = field(default_factory=list)  # duplicates and other things worth saying


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def headline(kind: str) -> str:
    """The metric a task is judged by: bits per char for LMs, accuracy otherwise."""
    return "test/bpc" if kind == "lm" else "test/acc"


def task_kind(summary: dict[str, Any]) -> str:
    keys = set(summary.get("metrics") or {})
    if any(k.endswith("/bpc") for k in keys):
        return "lm"
    task = str(summary.get("task", ""))
    return "lm" if task.endswith("charlm") or task.endswith("_lm") else "classification"


def chance_value(summary: dict[str, Any], kind: str) -> float:
    """Score of a model that learned nothing (what a diverged, non-finite model gets)."""
    chance = _num(summary.get("chance"))
    if kind == "lm":  # chance is the uniform next-char accuracy 1/V; its bpc is log2 V
        return math.log2(1.0 / chance) if chance and chance > 0 else math.nan
    return chance


def _seconds_per_step(s: dict[str, Any], wall: float, steps: float) -> float:
    """Training seconds per optimizer step: the run's own step timer when it has one
    (summary["throughput"], excludes setup and the test pass), else wall time / steps."""
    rate = _num((s.get("throughput") or {}).get("train_steps_per_s"))
    if math.isfinite(rate) and rate > 0:
        return 1.0 / rate
    return wall / steps if steps else math.nan


def model_fields(s: dict[str, Any]) -> dict[str, Any]:
    """The run's model config, overlaid by the block config it was built with."""
    model = dict((s.get("config") or {}).get("model") or {})
    block = s.get("model")
    if isinstance(block, dict):
        return {**model, **block}
    return {**model, **{k: s[k] for k in LEGACY_MODEL_KEYS if s.get(k) is not None}}


def _looks(spec: Any) -> float:
    """1 + (max − start) / step of a study.adaptive spec; NaN for a fixed design."""
    try:
        return 1 + (int(spec["max"]) - int(spec["start"])) // int(spec["step"])
    except (TypeError, KeyError, ValueError, ZeroDivisionError):
        return math.nan


def summary_row(s: dict[str, Any], run_dir: str, source: str) -> dict[str, Any]:
    """The flat row of one summary (stability.json / CSV parts are added by the caller)."""
    cfg = s.get("config") or {}
    model = model_fields(s)
    trainer, optim = cfg.get("trainer") or {}, cfg.get("optim") or {}
    stab = s.get("stability") or {}
    metrics = s.get("metrics") or {}
    kind = task_kind(s)
    metric = headline(kind)
    status = str(s.get("status", "unknown"))
    value, imputed = _num(metrics.get(metric)), False
    if status == DIVERGED and not math.isfinite(value):
        value, imputed = chance_value(s, kind), True
    steps = _num(s.get("steps"))
    wall = _num(s.get("wall_s"))
    diverged_at = s.get("diverged_at_step", stab.get("diverged_at_step"))
    row = {
        "run_dir": run_dir,
        "source": source,
        "run_key": s.get("run_key"),
        "status": status,
        "task": s.get("task"),
        "kind": kind,
        "variant": s.get("variant") or model.get("variant"),
        "arch": arch_of(s, model),
        "residual": str(model.get("residual")) if model.get("residual") is not None else None,
        "norm_position": model.get("norm_position"),
        "norm": model.get("norm"),
        "norm_eps": _num(model.get("norm_eps")),
        "attn_scale": model.get("attn_scale"),
        "qk_norm": model.get("qk_norm"),
        "activation": model.get("activation"),
        "depth": _num(model.get("depth")),
        "dim": _num(model.get("dim")),
        "heads": _num(model.get("heads")),
        "seed": _num(s.get("seed")),
        "lr": _num(s.get("lr", optim.get("lr"))),
        "warmup_steps": _num(s.get("warmup_steps", optim.get("warmup_steps"))),
        "schedule": optim.get("schedule"),
        "max_steps": _num(trainer.get("max_steps", s.get("steps"))),
        "steps": steps,
        "wall_s": wall,
        "wall_per_step": wall / steps if steps else math.nan,
        "train_s_per_step": _seconds_per_step(s, wall, steps),
        # what measured it: a pack's members share one timer (claims.step_time)
        "step_timer": (s.get("pack") or {}).get("id") or run_dir,
        "params": _num(s.get("params")),
        "chance": chance_value(s, kind),
        "metric": metric,
        "value": value,
        "value_imputed": imputed,
        "test_loss": _num(metrics.get("test/loss")),
        "diverged": status == DIVERGED or bool(stab.get("diverged")),
        "diverged_at_step": _num(diverged_at),
        "spike_count": _num(stab.get("spike_count")),
        "init_loss": _num(stab.get("initial_loss")),
        "error": s.get("error"),
        # the claims its study preset declares primary (conf/study/*.yaml study.primary)
        "study_primary": ",".join(map(str, (cfg.get("study") or {}).get("primary") or [])) or None,
        # the planned looks of an adaptive study (study.adaptive): its verdicts' α is split
        "study_looks": _looks((cfg.get("study") or {}).get("adaptive")),
    }
    for k, v in stab.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            row[f"stab_{k}"] = float(v)
    for k, v in metrics.items():
        if isinstance(v, int | float):
            row[f"m_{k}"] = float(v)
    row["usable"] = status in USABLE
    return row


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> DataFrame with the object columns always present."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        df = pd.DataFrame(rows)
    for col in OBJECT_COLUMNS:
        if col not in df:
            df[col] = None
    return df


def dedupe(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep one usable row per run_key (the same run reached through two sources, e.g. a
    sweep folder and the Optuna trial that points into it); say what was dropped."""
    if df.empty or "run_key" not in df:
        return df, []
    keyed = df["usable"] & df["run_key"].notna()
    dup = keyed & df["run_key"].duplicated(keep="first")
    notes = [
        f"{r.run_dir} ({r.source}) repeats run_key {r.run_key}; counted once"
        for r in df[dup].itertuples()
    ]
    return df[~dup].reset_index(drop=True), notes


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """Only runs whose results may be aggregated (completed or diverged)."""
    return df[df["usable"]] if len(df) else df
