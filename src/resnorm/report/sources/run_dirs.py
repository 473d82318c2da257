"""Run and sweep directories as a report source: every summary.json below them, with the
run's stability.json and CSV metrics log."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from resnorm.outputs import METRICS_CSV, STABILITY, SUMMARY, read_summary
from resnorm.report.sources.classify import ReportError
from resnorm.report.sources.rows import Loaded, dedupe, frame, summary_row


def read_stability(path: Path) -> dict[str, Any]:
    """init / final probes and spike steps from stability.json ({} when absent or unreadable)."""
    try:
        return parse_stability(path.read_text())
    except OSError:
        return {}


def parse_stability(text: str | None) -> dict[str, Any]:
    """``read_stability`` of the file's text ({} when None or not a JSON object)."""
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    spikes = (data.get("loss_spikes") or {}).get("steps") or []
    return {
        "init_probe": data.get("init"),
        "final_probe": data.get("final"),
        "spike_steps": [int(x) for x in spikes],
    }


# per-step quantities of the training figures: one CSV column each, or one per layer
LOG_COLUMNS = {"grad_norm": "stability/grad_norm", "lr": "train/lr"}
UPDATE_RATIO, RESIDUAL_RMS = "stability/update_ratio/", "stability/residual_rms/"


def _layer_columns(df: pd.DataFrame, prefix: str) -> list[str]:
    cols = [c for c in df.columns if c.startswith(prefix)]
    return sorted(cols, key=lambda c: int(re.sub(r"\D", "", c[len(prefix) :]) or 0))


def train_log(df: pd.DataFrame) -> pd.DataFrame | None:
    """One row per logged step: grad_norm, update_ratio (max over layers), residual_rms
    (last layer, where the stream's growth adds up) and lr, whichever the log has."""
    out = pd.DataFrame({"step": df["step"]})
    for name, col in LOG_COLUMNS.items():
        if col in df:
            out[name] = df[col]
    if ratio := _layer_columns(df, UPDATE_RATIO):
        out["update_ratio"] = df[ratio].max(axis=1, skipna=True)
    if rms := _layer_columns(df, RESIDUAL_RMS):
        out["residual_rms"] = df[rms[-1]]
    if out.shape[1] == 1:
        return None
    out = out.apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)
    # a step's quantities are logged on rows of their own; a resumed run repeats a step
    out = out.groupby("step").last().dropna(how="all").reset_index()
    return out if len(out) else None


def read_curves(
    path: Path | IO[str], val_metric: str
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    """(step, train/loss), (step, val metric) and ``train_log`` from the Lightning CSV log
    (a file, or its text as a stream), if present; only the columns these need are kept."""
    want = {"step", "train/loss", val_metric, *LOG_COLUMNS.values()}
    try:
        df = pd.read_csv(
            path, usecols=lambda c: c in want or c.startswith((UPDATE_RATIO, RESIDUAL_RMS))
        )
    except (OSError, ValueError, pd.errors.ParserError):
        return None, None, None
    out = []
    for col in ("train/loss", val_metric):
        if col not in df or "step" not in df:
            out.append(None)
            continue
        c = df[["step", col]]
        c = c[np.isfinite(c[col].astype(float))]  # a diverged run logs inf / nan
        c = c.drop_duplicates("step", keep="last").sort_values("step")  # a resumed run repeats
        out.append(c.reset_index(drop=True) if len(c) else None)
    return out[0], out[1], train_log(df) if "step" in df else None


def enrich(row: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Add stability.json and CSV parts of a run directory to its summary row."""
    return add_run_files(row, read_stability(run_dir / STABILITY), run_dir / METRICS_CSV)


def add_run_files(
    row: dict[str, Any], stab: dict[str, Any], metrics_csv: Path | IO[str] | None
) -> dict[str, Any]:
    """Add a run's stability record (``parse_stability``) and CSV log to its summary row;
    the one path for run directories and exports, so both give the same numbers."""
    row.update({k: stab.get(k) for k in ("init_probe", "final_probe", "spike_steps")})
    init = row["init_probe"] or {}
    if isinstance(init.get("loss"), int | float):
        row["init_loss"] = float(init["loss"])  # eval-mode loss on the fixed probe batch
    if math.isnan(row["spike_count"]) and stab.get("spike_steps") is not None:
        row["spike_count"] = float(len(stab["spike_steps"]))
    val_metric = "val/bpc" if row["kind"] == "lm" else "val/acc"
    curves = read_curves(metrics_csv, val_metric) if metrics_csv is not None else (None,) * 3
    row["curve"], row["val_curve"], row["train_log"] = curves
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
