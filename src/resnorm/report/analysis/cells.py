"""The cell key: what makes two runs replicates of one cell (the same architecture trained
the same way) rather than two different things.

A cell is everything about a run but its seed: the task, the architecture (``arch``, which
already names every block field a run overrode: norm, norm_eps, activation, attn_scale,
qk_norm, layerscale_init, ...; see ``sources/arch.py``) and the fields that size the model
or set its training (depth, width, heads, FFN width, dropout, lr, warmup, schedule, budget).
Tables, LR grids and the frontier group by this key, so e.g. pre_ln at 1 and at 4 heads are
two cells, never one pooled mean. Columns the runs table does not carry are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# The model's size and the training setting: not part of ``arch`` (variants.SETTING_FIELDS).
SETTING_KEYS = (
    "depth",
    "dim",
    "heads",
    "ffn_mult",
    "dropout",
    "lr",
    "warmup_steps",
    "schedule",
    "max_steps",
)
CELL_KEYS = ("task", "arch", *SETTING_KEYS)
ALWAYS_SHOWN = ("task", "arch", "depth")  # columns of every table, varying or not


def cell_keys(df: pd.DataFrame, without: Iterable[str] = ()) -> list[str]:
    """The key columns ``df`` carries (CELL_KEYS order), less ``without`` (e.g. "lr" for an
    LR grid, whose cells are the grid's points)."""
    drop = set(without)
    return [k for k in CELL_KEYS if k in df and k not in drop]


def varies(column: pd.Series) -> bool:
    """More than one value, a missing one counting as a value of its own: a run that does
    not record its heads is not known to share them, so it is not pooled."""
    return column.nunique(dropna=False) > 1


def shown_keys(df: pd.DataFrame, without: Iterable[str] = ()) -> list[str]:
    """task, arch, depth, plus every other key column that varies in ``df``. Grouping by
    these splits ``df`` exactly as grouping by the whole key does (a constant column never
    splits it), and they are the columns a reader needs to tell cells apart."""
    keys = cell_keys(df, without)
    return [k for k in keys if k in ALWAYS_SHOWN or varies(df[k])]


def key_values(keys: Sequence[str], key: Any) -> dict[str, Any]:
    """A groupby key (a scalar for one column) as {column: value}."""
    values = key if isinstance(key, tuple) else (key,)
    return dict(zip(keys, values, strict=True))


def value_text(value: Any) -> str:
    if isinstance(value, float):
        return "–" if pd.isna(value) else f"{value:g}"
    return "–" if value is None else str(value)


def setting_text(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The non-ALWAYS_SHOWN keys of a cell in words, e.g. 'heads 4, lr 0.001'."""
    return ", ".join(
        f"{k} {value_text(row.get(k))}" for k in keys if k not in ALWAYS_SHOWN and k in row
    )


def at_shared(
    a: pd.DataFrame, b: pd.DataFrame, setting: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames cut to the values of ``setting`` (columns) that both have, rows in their
    order; a missing value matches a missing value. No columns: both unchanged; either frame
    empty: both empty."""
    if not setting:
        return a, b
    if a.empty or b.empty:
        return a.iloc[0:0], b.iloc[0:0]
    keys = list(setting)
    both = pd.concat([a[keys], b[keys]], ignore_index=True)
    codes = both.groupby(keys, dropna=False, sort=False).ngroup().to_numpy()
    in_a, in_b = codes[: len(a)], codes[len(a) :]
    return a[np.isin(in_a, in_b)], b[np.isin(in_b, in_a)]
