"""Before/after: the runs of a study (NEW) matched with a baseline's (OLD) by run key.

The run key hashes a run's resolved config without the run-only keys (outputs.RUN_ONLY_KEYS)
and never the code version (``versions`` sits outside the config), so a key present on both
sides is the same computation asked of two code versions. Each matched pair of finished runs
(completed or diverged) gives NEW - OLD of the headline metric and of test loss; a cell (the
setting without the seed) gets the mean change with a paired t-interval over seeds
(``stats.mean_ci`` of the per-seed differences, n - 1 df). A pair whose every recorded number
is the same float is *identical*. Unfinished runs are listed, never averaged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from resnorm.report.analysis.stats import Estimate, mean_ci

# A cell: the setting columns of the runs table, i.e. what a run key holds besides the seed.
CELL = ("task", "arch", "depth", "dim", "heads", "lr", "warmup_steps", "schedule", "max_steps")
# Numbers compared for bitwise identity, besides every recorded metric (``m_*`` columns).
IDENTITY = ("value", "test_loss", "steps", "diverged_at_step")
LOSS = "test/loss"


@dataclass
class Cell:
    key: dict[str, Any]
    metric: str
    pairs: int  # matched finished pairs
    seeds: int  # the n of the intervals
    identical: int  # pairs identical in every recorded number
    value: Estimate  # NEW - OLD of the headline metric, over seeds
    loss: Estimate  # NEW - OLD of test loss, over seeds
    value_zero: bool  # every headline difference is exactly 0
    loss_zero: bool
    status_changed: int

    def beyond_noise(self) -> list[str]:
        """The quantities whose 95% interval excludes 0: a change beyond the seed noise."""
        out = []
        for name, est, zero in ((self.metric, self.value, self.value_zero),
                                (LOSS, self.loss, self.loss_zero)):  # fmt: skip
            if not zero and est.has_ci and (est.low > 0 or est.high < 0):
                out.append(name)
        return out


@dataclass
class Comparison:
    baseline: list[str]  # the baseline's sources as typed
    pairs: pd.DataFrame  # one row per matched finished pair (see ``match``)
    cells: list[Cell]
    not_compared: pd.DataFrame  # matched keys where a side is not finished: both statuses
    only_new: pd.DataFrame  # run_dir, status of runs whose key the baseline lacks
    only_old: pd.DataFrame
    unkeyed: int = 0  # runs without a run key (older sources): never matched
    skipped: list[str] = field(default_factory=list)  # the baseline's unreadable summaries
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> int:
        return int(self.pairs["identical"].sum()) if len(self.pairs) else 0

    @property
    def changed_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.beyond_noise()]

    @property
    def status_changes(self) -> int:
        frames = [f for f in (self.pairs, self.not_compared) if len(f)]
        return int(sum((f["status"] != f["status_old"]).sum() for f in frames))

    def summary_line(self) -> str:
        """One line for the terminal; every count always present, so it greps the same."""
        matched = len(self.pairs) + len(self.not_compared)
        return (
            f"baseline: {matched} runs matched ({self.identical} identical, "
            f"{len(self.not_compared)} unfinished), {len(self.changed_cells)} cells changed "
            f"beyond the noise, {self.status_changes} runs changed status, "
            f"{len(self.only_new)} only in NEW, {len(self.only_old)} only in OLD"
        )


def _one_per_key(runs: pd.DataFrame) -> pd.DataFrame:
    """A run key's row; a finished one wins over a rerun that is still running or failed."""
    keyed = runs[runs["run_key"].notna()]
    order = keyed.assign(_u=~keyed["usable"].astype(bool)).sort_values("_u", kind="stable")
    return order.drop_duplicates("run_key").drop(columns="_u")


def same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Elementwise: the same float (two NaNs are the same: a metric neither run recorded)."""
    x, y = a.astype(float).to_numpy(), b.astype(float).to_numpy()
    return (x == y) | (np.isnan(x) & np.isnan(y))


def delta(new: pd.Series, old: pd.Series) -> np.ndarray:
    """NEW - OLD; exactly 0 where both hold the same number (inf or NaN included)."""
    x, y = new.astype(float).to_numpy(), old.astype(float).to_numpy()
    with np.errstate(invalid="ignore"):
        return np.where(same(new, old), 0.0, x - y)


def match(new: pd.DataFrame, old: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(finished pairs, pairs with an unfinished side), both keyed by run key.

    A pair row holds NEW's columns, OLD's status/run_dir as ``*_old``, ``d_value`` and
    ``d_loss`` (NEW - OLD), ``identical`` and ``status_changed``.
    """
    metrics = sorted(c for c in set(new) | set(old) if str(c).startswith("m_"))
    cols = ["run_key", "run_dir", "status", "usable", *IDENTITY, *metrics]
    # a metric one side never recorded is NaN there; every column of ``cols`` overlaps, so
    # each OLD column comes out as ``*_old``
    left = new.reindex(columns=list(dict.fromkeys([*new.columns, *cols])))
    both = left.merge(old.reindex(columns=cols), on="run_key", suffixes=("", "_old"))
    finished = both["usable"].astype(bool) & both["usable_old"].astype(bool)
    pairs, rest = both[finished].copy(), both[~finished].copy()
    pairs["d_value"] = delta(pairs["value"], pairs["value_old"])
    pairs["d_loss"] = delta(pairs["test_loss"], pairs["test_loss_old"])
    ident = np.ones(len(pairs), dtype=bool)
    for c in (*IDENTITY, *metrics):
        ident &= same(pairs[c], pairs[f"{c}_old"])
    pairs["status_changed"] = pairs["status"] != pairs["status_old"]
    pairs["identical"] = ident & ~pairs["status_changed"].to_numpy()
    return pairs.reset_index(drop=True), rest.reset_index(drop=True)


def _per_seed(pairs: pd.DataFrame, col: str) -> pd.Series:
    """Each seed's mean difference (a seed holds several pairs only when configs that the
    table cannot tell apart share a cell: averaged, as ``stats.difference`` does)."""
    seed = pairs["seed"].astype(object).where(pairs["seed"].notna(), pairs["run_key"])
    return pairs.groupby(seed, sort=False)[col].mean()


def cells(pairs: pd.DataFrame) -> list[Cell]:
    """One Cell per setting (the run key without the seed), in sort order."""
    out = []
    if pairs.empty:
        return out
    keys = [k for k in CELL if k in pairs]
    for key, g in pairs.groupby(keys, dropna=False, sort=True):
        d_value, d_loss = _per_seed(g, "d_value"), _per_seed(g, "d_loss")
        est, loss = mean_ci(d_value), mean_ci(d_loss)
        out.append(
            Cell(
                key=dict(zip(keys, key, strict=True)),
                metric=str(g["metric"].iloc[0]),
                pairs=len(g),
                seeds=len(d_value),
                identical=int(g["identical"].sum()),
                value=Estimate(est.mean, est.low, est.high, est.n, True, est.se, est.df),
                loss=Estimate(loss.mean, loss.low, loss.high, loss.n, True, loss.se, loss.df),
                value_zero=bool((g["d_value"] == 0).all()),
                loss_zero=bool((g["d_loss"] == 0).all()),
                status_changed=int(g["status_changed"].sum()),
            )
        )
    return out


def compare(
    new: pd.DataFrame,
    old: pd.DataFrame,
    baseline: list[str],
    skipped: list[str] | None = None,
    notes: list[str] | None = None,
) -> Comparison:
    """NEW's runs against the baseline's: matched pairs, cells, runs on one side only."""
    a, b = _one_per_key(new), _one_per_key(old)
    pairs, rest = match(a, b)
    side = ["run_dir", "status", "task", "arch", "depth", "seed"]
    only_new = a[~a["run_key"].isin(b["run_key"])].reindex(columns=side)
    only_old = b[~b["run_key"].isin(a["run_key"])].reindex(columns=side)
    unkeyed = int(new["run_key"].isna().sum() + old["run_key"].isna().sum())
    return Comparison(
        baseline=baseline,
        pairs=pairs,
        cells=cells(pairs),
        not_compared=rest,
        only_new=only_new.reset_index(drop=True),
        only_old=only_old.reset_index(drop=True),
        unkeyed=unkeyed,
        skipped=list(skipped or []),
        notes=list(notes or []),
    )
