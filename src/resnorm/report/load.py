"""Runs -> one pandas DataFrame row each, from the outputs contract.

Tolerant by design: stability probes may be off, a run may have died before writing
stability.json, older summaries lack newer keys. Every missing value becomes NaN/None,
never a crash; only a summary from a *newer* schema stops the report (we would misread it).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from resnorm.outputs import METRICS_CSV, STABILITY, SUMMARY, read_summary
from resnorm.report.sources import ReportError
from resnorm.report.variants import canonical_arch

# Statuses whose results are aggregated. `running` (unfinished), `failed` and `pruned`
# (stopped early on purpose) are listed in the report but never averaged as results.
USABLE = ("completed", "diverged")
# Columns that identify a training setting; runs paired across variants share all of them.
SETTING = ("task", "depth", "dim", "lr", "warmup_steps", "max_steps")
OBJECT_COLUMNS = ("init_probe", "final_probe", "spike_steps", "curve", "val_curve")


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


def summary_row(s: dict[str, Any], run_dir: str, source: str) -> dict[str, Any]:
    """The flat row of one summary (stability.json / CSV parts are added by the caller)."""
    cfg = s.get("config") or {}
    model = {
        **(cfg.get("model") or {}),
        **{
            k: s[k]
            for k in ("residual", "norm_position", "norm", "depth", "dim", "heads")
            if s.get(k) is not None
        },
    }
    trainer, optim = cfg.get("trainer") or {}, cfg.get("optim") or {}
    stab = s.get("stability") or {}
    metrics = s.get("metrics") or {}
    kind = task_kind(s)
    metric = headline(kind)
    status = str(s.get("status", "unknown"))
    value, imputed = _num(metrics.get(metric)), False
    if status == "diverged" and not math.isfinite(value):
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
        "arch": canonical_arch(model, s.get("variant") or model.get("variant")),
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
        "max_steps": _num(trainer.get("max_steps", s.get("steps"))),
        "steps": steps,
        "wall_s": wall,
        "wall_per_step": wall / steps if steps else math.nan,
        "train_s_per_step": _seconds_per_step(s, wall, steps),
        "params": _num(s.get("params")),
        "chance": chance_value(s, kind),
        "metric": metric,
        "value": value,
        "value_imputed": imputed,
        "test_loss": _num(metrics.get("test/loss")),
        "diverged": status == "diverged" or bool(stab.get("diverged")),
        "diverged_at_step": _num(diverged_at),
        "spike_count": _num(stab.get("spike_count")),
        "init_loss": _num(stab.get("initial_loss")),
        "error": s.get("error"),
    }
    for k, v in stab.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            row[f"stab_{k}"] = float(v)
    for k, v in metrics.items():
        if isinstance(v, int | float):
            row[f"m_{k}"] = float(v)
    row["usable"] = status in USABLE
    return row


def read_stability(path: Path) -> dict[str, Any]:
    """init / final probes and spike steps from stability.json ({} when absent or unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    spikes = (data.get("loss_spikes") or {}).get("steps") or []
    return {
        "init_probe": data.get("init"),
        "final_probe": data.get("final"),
        "spike_steps": [int(x) for x in spikes],
    }


def read_curves(path: Path, val_metric: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(step, train/loss) and (step, val metric) from the Lightning CSV log, if present."""
    want = {"step", "train/loss", val_metric}
    try:
        df = pd.read_csv(path, usecols=lambda c: c in want)
    except (OSError, ValueError, pd.errors.ParserError):
        return None, None
    out = []
    for col in ("train/loss", val_metric):
        if col not in df or "step" not in df:
            out.append(None)
            continue
        c = df[["step", col]]
        c = c[np.isfinite(c[col].astype(float))]  # a diverged run logs inf / nan
        c = c.drop_duplicates("step", keep="last").sort_values("step")  # a resumed run repeats
        out.append(c.reset_index(drop=True) if len(c) else None)
    return out[0], out[1]


def enrich(row: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Add stability.json and CSV parts of a run directory to its summary row."""
    stab = read_stability(run_dir / STABILITY)
    row.update({k: stab.get(k) for k in ("init_probe", "final_probe", "spike_steps")})
    init = row["init_probe"] or {}
    if isinstance(init.get("loss"), int | float):
        row["init_loss"] = float(init["loss"])  # eval-mode loss on the fixed probe batch
    if math.isnan(row["spike_count"]) and stab.get("spike_steps") is not None:
        row["spike_count"] = float(len(stab["spike_steps"]))
    val_metric = "val/bpc" if row["kind"] == "lm" else "val/acc"
    row["curve"], row["val_curve"] = read_curves(run_dir / METRICS_CSV, val_metric)
    return row


def find_summaries(root: Path) -> list[Path]:
    if (root / SUMMARY).is_file():
        return [root / SUMMARY]
    return sorted(p for p in root.rglob(SUMMARY) if ".hydra" not in p.parts)


def load_dirs(dirs: list[str]) -> Loaded:
    """Every run below the given directories; corrupt summaries are skipped and named."""
    rows, skipped = [], []
    seen_paths: set[Path] = set()
    for d in dirs:
        found = find_summaries(Path(d))
        if not found:
            raise ReportError(f"no runs found in {d} (no {SUMMARY} in it or below it)")
        for path in found:
            real = path.resolve()
            if real in seen_paths:
                continue
            seen_paths.add(real)
            try:
                s = read_summary(path.parent)
            except ValueError as exc:
                if "newer than this resnorm" in str(exc):
                    raise ReportError(str(exc)) from exc
                skipped.append(f"{path}: not valid JSON ({str(exc).splitlines()[0]})")
                continue
            except OSError as exc:
                skipped.append(f"{path}: unreadable ({exc.strerror or exc})")
                continue
            if not isinstance(s, dict) or "status" not in s:
                skipped.append(f"{path}: not a resnorm summary (no 'status')")
                continue
            rows.append(enrich(summary_row(s, str(path.parent), "dir"), path.parent))
    runs, notes = dedupe(frame(rows))
    return Loaded(runs, skipped, notes)


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
