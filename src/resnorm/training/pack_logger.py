"""One Lightning logger for a pack: routes each member's metrics to that member's loggers.

A pack is one Lightning fit, and Lightning hands every logger the same dict. The module
logs member i's values under ``m{i}/<name>``; this logger strips the prefix and passes
them to member i's own loggers (its CSV log, its W&B run), with the keys Lightning adds
itself (``epoch``) going to every member. Each member's ``metrics.csv`` therefore holds
the same rows a solo run of it writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from resnorm.jobs.member_metrics import split_metrics


class PackLogger(Logger):
    """Fans a pack's logging out to k lists of ordinary Lightning loggers."""

    def __init__(self, members: Sequence[Sequence[Logger]]) -> None:
        super().__init__()
        self.members = [list(m) for m in members]
        # member -> the step its run ended at (it diverged while the pack goes on)
        self.ended: dict[int, int] = {}

    def end_member(self, i: int, step: int) -> None:
        """Member i's run ended at ``step``: Lightning's values of later steps (it repeats the
        last value of a metric that is no longer logged) are not the member's; its test
        results, taken after the fit, still are."""
        self.ended[i] = step

    @property
    def name(self) -> str:
        return "pack"

    @property
    def version(self) -> str:
        return ""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        split = split_metrics(metrics, len(self.members))
        for i, (loggers, values) in enumerate(zip(self.members, split, strict=True)):
            if i in self.ended and step is not None and step >= self.ended[i]:
                values = {k: v for k, v in values.items() if k.startswith("test/")}
            if values:
                for lg in loggers:
                    lg.log_metrics(values, step=step)

    def log_member(self, i: int, metrics: Mapping[str, float], step: int) -> None:
        """Write member ``i``'s values now (e.g. a member that stops while the pack goes on)."""
        for lg in self.members[i]:
            lg.log_metrics(dict(metrics), step=step)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        for loggers in self.members:
            for lg in loggers:
                lg.log_hyperparams(params, *args, **kwargs)

    @rank_zero_only
    def save(self) -> None:
        for loggers in self.members:
            for lg in loggers:
                lg.save()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        for loggers in self.members:
            for lg in loggers:
                lg.finalize(status)
