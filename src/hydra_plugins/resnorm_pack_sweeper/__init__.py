"""resnorm's default Hydra sweeper: BasicSweeper's grid, jobs grouped into packs (``pack=k``)."""
