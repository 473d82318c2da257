"""Every claim of claims.registry, in its order, judged on every task of a report."""

from __future__ import annotations

import pandas as pd

from resnorm.report.analysis.probes import add_probe_columns
from resnorm.report.claims.lr_selection import VAL_COLUMNS
from resnorm.report.claims.registry import CLAIMS
from resnorm.report.claims.rules import Context, Finding, finish
from resnorm.report.claims.verdicts import resolve
from resnorm.report.sources.rows import OBJECT_COLUMNS, usable


def contexts(df: pd.DataFrame) -> list[Context]:
    """One Context per task present in the runs (usable or not); each judges its claims at
    the task's base width (rules.Context), claim (r) at every width."""
    ok = add_probe_columns(usable(df))
    # narrow frames: every claim filters and merges many times, and pandas copies all columns
    # claim (o) reads validation curves; (d), (g) select each variant's lr on validation
    keep = ("val_curve", *VAL_COLUMNS.values())
    ok = ok[
        [
            c
            for c in ok.columns
            if c in keep or (c not in OBJECT_COLUMNS and not c.startswith(("m_", "stab_")))
        ]
    ]
    cols = ("task", "arch", "depth", "dim", "heads", "lr", "warmup_steps", "seed", "status")
    lean = df[[c for c in (*cols, "usable") if c in df]]
    out = []
    for task in sorted(df["task"].dropna().unique()):
        out.append(Context(task, ok[ok["task"] == task], lean[lean["task"] == task]))
    return out


def all_findings(df: pd.DataFrame) -> list[Finding]:
    """Every claim on every task of the report, in claim order, with verdicts.

    The hypotheses of all testable parts form one Holm family (claims.verdicts), so the
    verdicts are set only once every finding is built.
    """
    ctxs = contexts(df)
    found = [c.test(ctx) for c in CLAIMS for ctx in ctxs]
    family = [p for f in found if not f.not_testable and f.fixed is None for p in f.parts]
    resolve(family)
    return [finish(f) for f in found]
