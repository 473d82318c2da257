"""One launcher's part in a study that any number of launchers may share.

Run the same ``resnorm train -m ...`` on several machines that see one output filesystem
(or again while earlier jobs still run): the jobs claim their runs
(``resnorm.jobs.claims``), so the launchers divide the study between them. This module is
the launcher's side: it records its jobs for the progress lines
(``resnorm.jobs.study_progress``), launches them (plainly, or as packs), then waits for
the runs other launchers hold and takes over those whose launcher died
(``resnorm.sweeps.completion``), and finally rebuilds the study index and prints the
study's end line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf

from resnorm.jobs import study_progress
from resnorm.jobs.claims import ClaimOptions
from resnorm.jobs.index import index_rows
from resnorm.sweeps.completion import Pending, settle
from resnorm.sweeps.pack_sweep import Job, Pack, Packer
from resnorm.sweeps.study_end import announce_end


class SharedStudy:
    def __init__(self, config: DictConfig, packer: Packer, launcher: Launcher) -> None:
        self.packer, self.launcher = packer, launcher
        self.opts = ClaimOptions.from_config(OmegaConf.select(config, "claims"))
        self.wait = bool(OmegaConf.select(config, "claims.wait", default=True))

    def run(
        self,
        batch: Sequence[Sequence[str]],
        jobs: Sequence[Job],
        first_num: int,
        packs: Sequence[Pack] | None,
    ) -> Sequence[JobReturn]:
        """Launch one batch (``packs``: its packs, or None to launch its jobs plainly),
        then settle the runs other launchers hold. Returns the launcher's returns (one per
        job, or per pack)."""
        rows = index_rows(self.packer.sweep_dir)
        progress = study_progress.start(self.packer.sweep_dir, [j.run_dir for j in jobs], rows)
        try:
            if packs is None:
                results = self.launcher.launch(batch, initial_job_idx=first_num)
            else:
                results = self.packer.launch(packs) if packs else []
            by_num = {j.num: j for j in jobs}

            def relaunch(again: list[Pending]) -> None:
                if packs is None:  # each job under its own number: same directory as before
                    for p in again:
                        self.launcher.launch([batch[p.num - first_num]], initial_job_idx=p.num)
                else:
                    self.packer.launch(self.packer.plan([by_num[p.num] for p in again]))

            pending = [Pending(j.num, j.run_dir) for j in jobs]
            settle(pending, self.opts, relaunch, wait=self.wait)
        finally:
            study_progress.stop(progress)
        return results

    def finish(self) -> list[dict[str, Any]]:
        """Rebuild the index and say where the study is, how its runs ended, and how
        to report it (``resnorm.sweeps.study_end``)."""
        return announce_end(self.packer.sweep_dir)
