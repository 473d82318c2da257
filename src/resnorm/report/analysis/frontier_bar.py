"""The frontier's success bar, declared per task before the runs: a run succeeds when its
score closes ``success_share`` of the gap from chance to ``reference_score``, the test score
of a named reference variant (pre_ln) at its best learning rate in a pilot.

The numbers live in the frontier study's config (``conf/study/frontier.yaml``, key
``study.frontier_bars.<task>``), with the pilot command that produced them: under
``study``, which is not part of a run's key (``outputs.RUN_ONLY_KEYS``), so fixing a bar
never makes finished runs look new (a task config key would). A task without a fixed
``reference_score`` falls back to this report's own reference cell: the reference
variant's best cell mean (over every depth, LR and setting it has here). That bar depends
on the reference's runs only, so adding another variant still never moves it, but it was
not fixed in advance, and the table and figure say so. Last resort, for reports without
the reference variant (custom variants only): the best cell of the report, as before the
bar was fixed, labelled as a bar that moves when a better variant is added.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from resnorm.paths import conf_dir
from resnorm.report.analysis.cells import cell_keys, key_values
from resnorm.report.analysis.table import higher_is_better
from resnorm.report.sources.rows import usable

REFERENCE = "pre_ln"  # the variant the bar is measured on unless a task names another
SUCCESS_SHARE = 0.5  # the share of the chance -> reference gap a run must close
# How a task's bar was set, best first (the table's bar_kind column).
FIXED, REPORT_REFERENCE, REPORT_BEST = "fixed", "report reference", "report best cell"
KIND_TEXT = {
    FIXED: "fixed in advance",
    REPORT_REFERENCE: "NOT fixed in advance",
    REPORT_BEST: "NOT fixed in advance; moves when a better variant is added",
}


@dataclass(frozen=True)
class Bar:
    """One task's bar as declared: the reference and the share; ``reference_score`` NaN
    when not fixed in advance (the report's reference cell is used)."""

    reference: str = REFERENCE
    reference_score: float = math.nan
    success_share: float = SUCCESS_SHARE
    pilot: str = ""  # how reference_score was measured (command, date)
    reference_lr: float = math.nan  # the reference's best LR in the pilot (search start)

    @property
    def fixed(self) -> bool:
        return math.isfinite(self.reference_score)


@dataclass(frozen=True)
class Limit:
    """One task's bar resolved against its runs: the score a run must reach."""

    score: float  # NaN: no run succeeds (the reference does not beat chance)
    chance: float
    reference_score: float
    bar: Bar
    origin: str  # where reference_score came from, in words
    kind: str  # FIXED, REPORT_REFERENCE or REPORT_BEST

    def text(self) -> str:
        return (
            f"{self.score:.4g} = chance {self.chance:.4g} + {self.bar.success_share:.0%} of "
            f"the gap to {self.reference_score:.4g} ({self.origin}; {KIND_TEXT[self.kind]})"
        )


def bar_from(conf: Mapping[str, Any] | None) -> Bar:
    """A task config's ``frontier`` mapping -> Bar (defaults for what it leaves out)."""
    conf = conf or {}
    score, lr = conf.get("reference_score"), conf.get("reference_lr")
    return Bar(
        reference=str(conf.get("reference") or REFERENCE),
        reference_score=float(score) if score is not None else math.nan,
        success_share=float(conf.get("success_share", SUCCESS_SHARE)),
        pilot=str(conf.get("pilot") or ""),
        reference_lr=float(lr) if lr is not None else math.nan,
    )


STUDY = Path("study") / "frontier.yaml"  # under the conf dir


def configured_bars(tasks: Iterable[str], root: Path | None = None) -> dict[str, Bar]:
    """Each task's Bar from ``study.frontier_bars`` of the frontier study's config; the
    default Bar (not fixed) for a task it does not name."""
    path = Path(root or conf_dir()) / STUDY
    conf = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
    declared = (conf.get("study") or {}).get("frontier_bars") or {}
    return {str(task): bar_from(declared.get(str(task))) for task in tasks}


def _best_cell(g: pd.DataFrame, higher: bool) -> tuple[float, dict[str, Any]]:
    """The best cell mean of ``g`` and its key (NaN, {} without scores)."""
    keys = cell_keys(g)
    means = g.groupby(keys, dropna=False)["value"].mean().dropna() if len(g) else pd.Series()
    if means.empty:
        return math.nan, {}
    at = int(np.argmax(means.to_numpy()) if higher else np.argmin(means.to_numpy()))
    return float(means.iloc[at]), key_values(keys, means.index[at])  # by position: NaN keys


def _from_report(g: pd.DataFrame, reference: str, higher: bool) -> tuple[float, str, str]:
    """The reference variant's best cell mean in this report (its best LR, over every
    setting it has here); without it, the report's best cell. Score, origin, kind."""
    score, cell = _best_cell(g[g["arch"] == reference], higher)
    kind = REPORT_REFERENCE
    if not math.isfinite(score):
        score, cell = _best_cell(g, higher)
        kind = REPORT_BEST
    at = ", ".join(f"{k} {cell[k]:g}" for k in ("depth", "lr") if k in cell)
    if kind == REPORT_REFERENCE:
        return score, f"{reference}: this report's {reference} cell at its best LR ({at})", kind
    name = cell.get("arch", "?")
    return score, f"no {reference} runs: this report's best cell, {name} ({at})", kind


def limits(df: pd.DataFrame, bars: Mapping[str, Bar] | None = None) -> dict[str, Limit]:
    """Per task with a bar, the score a run must reach. ``bars`` defaults to the configs.

    Accuracy without a recorded chance level falls back to 0; bpc cannot, so such a task
    gets no bar (and no frontier); nor does a task without any score.
    """
    ok = usable(df)
    if ok.empty:
        return {}
    tasks = [str(t) for t in ok["task"].dropna().unique()]
    bars = configured_bars(tasks) if bars is None else bars
    out: dict[str, Limit] = {}
    for task, g in ok.groupby("task"):
        bar = bars.get(str(task), Bar())
        higher = higher_is_better(str(g["metric"].iloc[0]))
        chance = g["chance"].dropna()
        if not len(chance) and not higher:
            continue
        base = float(chance.iloc[0]) if len(chance) else 0.0
        if bar.fixed:
            ref, kind = bar.reference_score, FIXED
            origin = f"{bar.reference} in a pilot: {bar.pilot or 'see the task config'}"
        else:
            ref, origin, kind = _from_report(g, bar.reference, higher)
        if not math.isfinite(ref):
            continue
        beats = ref > base if higher else ref < base
        score = base + bar.success_share * (ref - base) if beats else math.nan
        out[str(task)] = Limit(score, base, ref, bar, origin, kind)
    return out
