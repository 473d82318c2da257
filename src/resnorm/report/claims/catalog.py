"""Every claim of claims.registry, in its order, judged on every task of a report."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from resnorm.report.analysis.probes import add_probe_columns
from resnorm.report.claims.adaptive import declared_looks
from resnorm.report.claims.lr_selection import VAL_COLUMNS
from resnorm.report.claims.registry import CLAIMS
from resnorm.report.claims.rules import Context, Finding, finish
from resnorm.report.claims.verdicts import ALPHA, resolve
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


def all_findings(
    df: pd.DataFrame, primary: Sequence[str] | None = None, looks: int | None = None
) -> list[Finding]:
    """Every claim on every task of the report, in claim order, with verdicts.

    The parts of the ``primary`` claims (keys; None: those the runs' study presets declare,
    ``declared_primary``, else every claim) form one Holm family
    (claims.verdicts), so the verdicts are set only once every finding is built; the other
    claims' parts are exploratory: decided at the unadjusted α and marked so. ``looks``
    (None: what the runs' study presets declare, ``adaptive.declared_looks``): the planned
    looks of an adaptive study; each is judged at α / looks (claims.adaptive).
    """
    ctxs = contexts(df)
    found = [c.test(ctx) for c in CLAIMS for ctx in ctxs]
    keys = set(primary) if primary is not None else declared_primary(df)
    family = [p for f in found if not f.not_testable and f.fixed is None for p in f.parts]
    for f in found:
        for p in f.parts:
            p.primary = keys is None or f.id in keys
    resolve(family, ALPHA / (looks or declared_looks(df)))
    return [finish(f) for f in found]


def declared_primary(df: pd.DataFrame) -> set[str] | None:
    """The claims the runs' study presets declare primary (study.primary in their config),
    together; None when no run declares any (then every claim is primary)."""
    if "study_primary" not in df:
        return None
    keys = {k for text in df["study_primary"].dropna() for k in str(text).split(",") if k}
    return keys or None
