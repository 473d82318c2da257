"""Every claim, once, in report order: the one list the rest derives from — the report's
claims and their order (claims.catalog), and the cells the findings study runs
(conf/case/*.yaml and ``study=findings``, written by claims.case_files).

A claim is added by defining its ``Claim`` next to its test function and listing it here.
"""

from __future__ import annotations

from resnorm.report.claims.article import CLAIM_I, CLAIM_J, CLAIM_K, CLAIM_L, CLAIM_M
from resnorm.report.claims.article_training import CLAIM_O, CLAIM_P, CLAIM_Q, CLAIM_R
from resnorm.report.claims.claim import Claim
from resnorm.report.claims.literature_alternatives import CLAIM_D, CLAIM_E, CLAIM_G, CLAIM_H
from resnorm.report.claims.literature_lr import CLAIM_F, CLAIM_N
from resnorm.report.claims.literature_stability import CLAIM_A, CLAIM_B, CLAIM_C
from resnorm.report.claims.needs import Cell

# (a)-(h), (n): what the literature says residuals and norms do; (i)-(m), (o)-(r): the
# seed article.
CLAIMS: tuple[Claim, ...] = (
    CLAIM_A,
    CLAIM_B,
    CLAIM_C,
    CLAIM_D,
    CLAIM_E,
    CLAIM_F,
    CLAIM_G,
    CLAIM_H,
    CLAIM_I,
    CLAIM_J,
    CLAIM_K,
    CLAIM_L,
    CLAIM_M,
    CLAIM_N,
    CLAIM_O,
    CLAIM_P,
    CLAIM_Q,
    CLAIM_R,
)

# The cells each claim needs, by key: a view of CLAIMS.
NEEDS: dict[str, tuple[Cell, ...]] = {c.key: c.needs for c in CLAIMS}


def claim(key: str) -> Claim:
    """The claim with this key ("a" … "r")."""
    for c in CLAIMS:
        if c.key == key:
            return c
    raise KeyError(f"no claim ({key})")


def all_cells() -> list[Cell]:
    """Every cell some claim needs, once, in a stable order."""
    return sorted({cell for c in CLAIMS for cell in c.needs})


def cases() -> dict[str, Cell]:
    """Case name (conf/case/<name>.yaml) -> the cell it runs, for every needed cell."""
    return {c.case: c for c in all_cells()}


def used_by(cell: Cell) -> list[str]:
    """Keys of the claims that need ``cell``, sorted."""
    return sorted(c.key for c in CLAIMS if cell in c.needs)
