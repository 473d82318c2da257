"""Which runs each finding needs: the single list behind conf/case/*.yaml, the
``study=findings`` preset, and the report's "missing" lines.

A cell is a variant (a conf/variant name, which its case file selects) at a depth, learning
rate and warmup; every cell is run for each seed of SEEDS on each embedded task.
"""

from __future__ import annotations

from dataclasses import dataclass

DEEP, SHALLOW = 8, 2
BASE_LR, BASE_WARMUP = 1e-3, 50
HEADS = 4  # conf/model/default.yaml: at width 64, d_k = 16
LR_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
# Wortsman et al. 2023's half-decade grid, for their own claim (n)
WORTSMAN_GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
E_DEPTHS = (DEEP, 16, 32)
SEEDS = tuple(range(8))  # the findings study's seeds: paired t-tests need n well above 3
MIN_SEEDS = 3  # fewer seeds than this never support or refute a finding
TASKS = ("image_digits", "nlp_charlm", "speech_synth", "nlp_listops")


@dataclass(frozen=True, order=True)
class Cell:
    arch: str
    depth: int = DEEP
    lr: float = BASE_LR
    warmup: int = BASE_WARMUP
    heads: int = HEADS

    @property
    def case(self) -> str:
        """Name of the conf/case file that runs this cell."""
        name = self.arch
        if self.depth != DEEP:
            name += f"_d{self.depth}"
        if self.lr != BASE_LR:
            name += "_lr" + f"{self.lr:.0e}".replace("e-0", "e-").replace("e+0", "e")
        if self.warmup != BASE_WARMUP:
            name += f"_w{self.warmup}"
        if self.heads != HEADS:
            name += f"_h{self.heads}"
        return name

    def label(self) -> str:
        heads = f" heads={self.heads}" if self.heads != HEADS else ""
        return f"{self.arch} depth={self.depth} lr={self.lr:g} warmup={self.warmup}{heads}"


def _lr_grid(*archs: str, grid: tuple[float, ...] = LR_GRID) -> tuple[Cell, ...]:
    return tuple(Cell(a, lr=lr) for a in archs for lr in grid)


NEEDS: dict[str, tuple[Cell, ...]] = {
    "a": (Cell("post_ln"), Cell("pre_ln")),
    "b": (Cell("post_ln"), Cell("post_ln", warmup=0), Cell("pre_ln"), Cell("pre_ln", warmup=0)),
    "c": (
        Cell("pre_ln"),
        Cell("no_residual"),
        Cell("pre_ln", depth=SHALLOW),
        Cell("no_residual", depth=SHALLOW),
    ),
    # (d), (g): each variant at its own best lr of the grid, chosen on validation
    "d": _lr_grid("rezero", "pre_ln", "no_norm"),
    # the depths at which plain Post-LN may fail; (e) is judged where it does
    "e": tuple(Cell(a, depth=d) for a in ("deepnorm", "post_ln") for d in E_DEPTHS),
    "f": _lr_grid("pre_ln", "post_ln", "no_norm"),
    "g": _lr_grid("dyt_pre", "pre_ln"),
    "h": (Cell("rmsnorm_pre"), Cell("pre_ln")),
    "i": (Cell("pre_ln"), Cell("no_residual")),
    "j": (Cell("pre_ln"), Cell("post_ln"), Cell("no_norm")),
    "k": (Cell("plain"), Cell("no_norm"), Cell("no_residual"), Cell("pre_ln")),
    "l": (Cell("uncentered_ln"), Cell("bert")),
    # d_k = 16 (4 heads) and 64 (1 head): does the missing 1/sqrt(d_k) hurt more as d_k grows?
    "m": tuple(Cell(a, heads=h) for a in ("unscaled_attn", "pre_ln") for h in (HEADS, 1)),
    "n": _lr_grid("pre_ln", "qk_norm", grid=WORTSMAN_GRID),
    "o": (Cell("pre_ln"), Cell("no_residual")),
    "p": (Cell("pre_ln"), Cell("no_norm")),
    "q": (Cell("pre_ln"), Cell("no_norm")),
}


def all_cells() -> list[Cell]:
    """Every cell some finding needs, once, in a stable order."""
    return sorted({c for cells in NEEDS.values() for c in cells})


def cases() -> dict[str, Cell]:
    return {c.case: c for c in all_cells()}
