"""Hydra sweeper ``hydra/sweeper=resnorm_pack``, the default of ``resnorm train -m``
(conf/hydra/default.yaml): Hydra's BasicSweeper, whose jobs ``pack=k`` groups into packs.

With ``pack=1`` (the default) it launches BasicSweeper's jobs: the same jobs, numbers and
directories. With ``pack=k`` each batch goes through resnorm.sweeps.pack_sweep: finished
jobs dropped, the rest grouped into packs of up to k compatible runs, one launcher job per
pack. Either way the launcher shares the study with any other launcher of it
(resnorm.sweeps.shared_sweep: runs claimed, progress, waiting for the others' runs).
Hydra imports this module in every run, so the sweep code loads only in a sweep.
"""

# No `from __future__ import annotations`: Hydra's scanner runs this module before it is in
# sys.modules, and dataclasses then cannot resolve string annotations.
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf


@dataclass
class ResnormPackSweeperConf:
    _target_: str = "hydra_plugins.resnorm_pack_sweeper.resnorm_pack_sweeper.PackSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="resnorm_pack", node=ResnormPackSweeperConf, provider="resnorm"
)


class PackSweeper(BasicSweeper):
    def packing(self, arguments: list[str]) -> bool:
        """Pack when ``pack`` is above 1 or swept: set by the command line or a preset."""
        assert self.config is not None and self.hydra_context is not None
        if OmegaConf.select(self.config, "pack", default=1) != 1:
            return True
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        return any(o.key_or_group == "pack" and o.is_sweep_override() for o in overrides)

    def sweep(self, arguments: list[str]) -> Any:
        from resnorm.sweeps.pack_sweep import Packer  # lazy: only a sweep needs these
        from resnorm.sweeps.shared_sweep import SharedStudy

        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        packing = self.packing(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size)
        packer = Packer(self.config, self.hydra_context, self.launcher)
        packer.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, Path(packer.sweep_dir) / "multirun.yaml")
        study = SharedStudy(self.config, packer, self.launcher)
        returns = []
        job_idx = 0
        while not self.is_done():
            batch = self.get_job_batch()
            tic = time.perf_counter()
            jobs = [packer.load(o, job_idx + i) for i, o in enumerate(batch)]
            if packing:
                packs = packer.plan(packer.unfinished(jobs))
                print(
                    f"resnorm: {len(jobs)} jobs, {sum(len(p.jobs) for p in packs)} to run in "
                    f"{len(packs)} packs (planned in {time.perf_counter() - tic:.1f}s)"
                )
            results = study.run(batch, jobs, job_idx, packs if packing else None)
            for r in results:
                _ = r.return_value  # raises if the job failed outside the app's own handling
            job_idx += len(batch)
            returns.append(results)
        study.finish()
        return returns
