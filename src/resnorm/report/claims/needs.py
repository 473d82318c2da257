"""The cells the claims' runs are made of, and the findings study's base setting.

A cell is a variant (a conf/variant name, which its case file selects) at a depth, learning
rate, warmup, head count and width; every cell is run for each seed of SEEDS on each embedded task.
Each claim lists the cells it needs in its own ``Claim`` (claims.claim); claims.registry
collects them into conf/case/*.yaml, the ``study=findings`` preset and the report's
"missing" lines.
"""

from __future__ import annotations

from dataclasses import dataclass

DEEP, SHALLOW = 8, 2
BASE_LR, BASE_WARMUP = 1e-3, 50
HEADS = 4  # conf/model/default.yaml: at width 64, d_k = 16
DIM = 64  # conf/model/default.yaml: the base width every claim but (r) is judged at
LR_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
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
    dim: int = DIM

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
        if self.dim != DIM:
            name += f"_dim{self.dim}"
        return name

    def label(self) -> str:
        heads = f" heads={self.heads}" if self.heads != HEADS else ""
        dim = f" dim={self.dim}" if self.dim != DIM else ""
        return f"{self.arch} depth={self.depth} lr={self.lr:g} warmup={self.warmup}{heads}{dim}"


def lr_grid(*archs: str, grid: tuple[float, ...] = LR_GRID) -> tuple[Cell, ...]:
    """Every arch at every lr of ``grid`` (depth, warmup, heads and width at the base
    setting)."""
    return tuple(Cell(a, lr=lr) for a in archs for lr in grid)
