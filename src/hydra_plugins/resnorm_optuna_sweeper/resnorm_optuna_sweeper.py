"""Hydra sweeper ``hydra/sweeper=resnorm_optuna``: a thin shell over resnorm.sweeps.optuna_sweeper.

Hydra finds it by scanning the ``hydra_plugins`` namespace package (no ``__init__.py`` at
``src/hydra_plugins``) and imports it in every run, so Optuna is imported only when a
sweep starts. Options: resnorm.sweeps.optuna_settings; presets: conf/hparams_search/.
"""

# No `from __future__ import annotations`: Hydra's scanner runs this module before it is in
# sys.modules, and dataclasses then cannot resolve string annotations.
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from resnorm.sweeps.optuna_settings import OptunaSweepSettings


@dataclass
class ResnormOptunaSweeperConf(OptunaSweepSettings):
    # Trials trained together as one pack (resnorm.sweeps.pack_sweep); null: the top-level
    # `pack` of the config (1 by default), as in any other multirun.
    pack: Any = None
    _target_: str = (
        "hydra_plugins.resnorm_optuna_sweeper.resnorm_optuna_sweeper.ResnormOptunaSweeper"
    )


ConfigStore.instance().store(
    group="hydra/sweeper", name="resnorm_optuna", node=ResnormOptunaSweeperConf, provider="resnorm"
)


class ResnormOptunaSweeper(Sweeper):
    def __init__(self, **options: Any) -> None:
        plain = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                 for k, v in options.items()}  # fmt: skip
        self.pack = plain.pop("pack", None)
        self.settings = OptunaSweepSettings(**plain)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from resnorm.sweeps.optuna_sweeper import OptunaSweep  # lazy: Optuna only in a sweep

        assert self.config is not None and self.launcher is not None
        launch = lambda batch, idx: self.launcher.launch(batch, initial_job_idx=idx)  # noqa: E731
        pack = self.pack if self.pack is not None else OmegaConf.select(self.config, "pack")
        packer = None
        if pack not in (None, 1):
            from resnorm.jobs.packing import check_pack_size  # lazy: only packed sweeps
            from resnorm.sweeps.pack_sweep import Packer

            check_pack_size(pack)
            assert self.hydra_context is not None
            packer = Packer(self.config, self.hydra_context, self.launcher, size=pack)
        sweep = OptunaSweep(self.settings, self.config, launch, packer)
        sweep.run(arguments)
        from resnorm.sweeps.study_end import announce_end

        announce_end(sweep.sweep_dir)  # where the trials are, their counts, the report
