"""Packed multiruns: the jobs of a batch grouped into packs, one launcher job per pack.

Each job's config is loaded as a launcher would load it (same overrides, same
``hydra.job.num``), so its resolved config and run directory are exactly those of an
unpacked job. Finished jobs are dropped first (the rule of ``resnorm.jobs.resume``), so
packs are filled with work; the rest are grouped by ``resnorm.jobs.packing`` and each pack
becomes one job of whatever launcher is configured (basic, joblib, submitit): a job of the
first member's overrides plus ``+pack_manifest=<manifest>``, whose own Hydra directory is
``<sweep dir>/.packs/<pack id>``. The app trains the manifest's members as one pack.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from resnorm.jobs.packing import (
    PACKS_DIR,
    check_pack_size,
    done_before,
    group,
    manifest_member,
    pack_id,
    pack_key,
    pack_overrides,
    write_manifest,
)
from resnorm.jobs.resume import retry_hint
from resnorm.outputs import FAILED, run_key


@dataclass
class Job:
    """One job of a sweep as its launcher would run it."""

    num: int
    launch_overrides: list[str]  # as given to the launcher (hydra.* ones included)
    overrides: list[str]  # the task overrides (what .hydra/overrides.yaml lists)
    run_dir: str
    config: dict[str, Any]  # resolved, without the hydra node
    hydra_files: dict[str, str]  # .hydra/{config,hydra,overrides}.yaml as the job writes them
    pack: int = 1
    key: str = ""  # pack key: jobs of one key may share a pack


@dataclass
class Pack:
    id: str
    jobs: list[Job]
    manifest: Path


class Packer:
    """Loads, filters, groups and launches the jobs of a sweep as packs."""

    def __init__(
        self,
        config: DictConfig,
        hydra_context: HydraContext,
        launcher: Launcher,
        size: int | None = None,
    ) -> None:
        """``size``: the most members of a pack; None: each job's own ``pack`` setting."""
        self.config, self.hydra_context, self.launcher = config, hydra_context, launcher
        self.size = size
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        self.launched = 0  # launcher jobs so far: the next pack's hydra.job.num

    def load(self, overrides: Sequence[str], num: int) -> Job:
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.id = num
            cfg.hydra.job.num = num
        run_dir = os.path.abspath(
            os.path.join(str(cfg.hydra.sweep.dir), str(cfg.hydra.sweep.subdir))
        )
        with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
            cfg.hydra.runtime.output_dir = run_dir
        saved = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(cfg)  # ${hydra:...} resolves as in the member's job
        try:
            task = copy.deepcopy(cfg)
            with read_write(task), open_dict(task):
                del task["hydra"]
            resolved = OmegaConf.to_container(task, resolve=True)
            files = {
                "config.yaml": OmegaConf.to_yaml(task),
                "hydra.yaml": OmegaConf.to_yaml(HydraConfig.instance().cfg),
                "overrides.yaml": OmegaConf.to_yaml(cfg.hydra.overrides.task),
            }
        finally:
            HydraConfig.instance().cfg = saved
        assert isinstance(resolved, dict)
        size = resolved.get("pack", 1)
        check_pack_size(size)
        return Job(
            num=num,
            launch_overrides=list(overrides),
            overrides=[str(o) for o in cfg.hydra.overrides.task],
            run_dir=run_dir,
            config=resolved,
            hydra_files=files,
            pack=size,
            key=pack_key(resolved),
        )

    def unfinished(self, jobs: Sequence[Job]) -> list[Job]:
        """The jobs whose run directory does not hold their answer yet (printing the rest)."""
        todo = []
        for job in jobs:
            status = done_before(job.config, job.run_dir)
            if status == FAILED:  # as a job alone says it (training.app)
                hint = retry_hint(job.config)
                print(f"resnorm: skipped (failed before; {hint} retries it) [{job.run_dir}]")
            elif status:
                print(f"resnorm: skipped ({status} before) [{job.run_dir}]")
            else:
                todo.append(job)
        return todo

    def plan(self, jobs: Sequence[Job]) -> list[Pack]:
        """Group the jobs (packs of up to each job's ``pack`` members of one pack key, in job
        order) and write each pack's manifest."""
        packs: list[list[Job]] = []
        size_of = (lambda j: self.size) if self.size else (lambda j: j.pack)
        for size in dict.fromkeys(size_of(j) for j in jobs):
            packs += group([j for j in jobs if size_of(j) == size], lambda j: j.key, size)
        packs.sort(key=lambda p: p[0].num)
        out = []
        for members in packs:
            pid = pack_id([(j.run_dir, run_key(j.config)) for j in members])
            records = [
                manifest_member(j.num, j.overrides, j.run_dir, j.config, j.hydra_files)
                for j in members
            ]
            out.append(Pack(pid, members, write_manifest(self.sweep_dir, pid, records)))
        return out

    def launch(self, packs: Sequence[Pack]) -> Sequence[JobReturn]:
        """One launcher call, one job per pack (a parallel launcher runs packs side by side)."""
        for i, p in enumerate(packs, start=1):
            c = p.jobs[0].config
            nums = ",".join(str(j.num) for j in p.jobs)
            print(
                f"resnorm: pack {i}/{len(packs)}: {len(p.jobs)} member"
                f"{'s' if len(p.jobs) > 1 else ''} (jobs {nums}) {c['task']['name']} "
                f"{c['model']['variant']} d{c['model']['depth']} "
                f"[{self.sweep_dir / PACKS_DIR / p.id}]"
            )
        batch = [pack_overrides(p.jobs[0].launch_overrides, p.manifest, p.id) for p in packs]
        returns = self.launcher.launch(batch, initial_job_idx=self.launched)
        self.launched += len(batch)
        return returns

    def run(self, batch: Sequence[Sequence[str]], first_num: int) -> list[JobReturn]:
        """Run the jobs of ``batch`` (numbered from ``first_num``) as packs; one JobReturn per
        job: its pack job's status and return value, no Hydra config (read its run dir)."""
        jobs = [self.load(o, first_num + i) for i, o in enumerate(batch)]
        packs = self.plan(self.unfinished(jobs))
        out = [JobReturn() for _ in jobs]
        for p, ret in zip(packs, self.launch(packs) if packs else [], strict=True):
            for job in p.jobs:
                out[job.num - first_num] = JobReturn(
                    overrides=job.overrides, status=ret.status, _return_value=ret._return_value
                )
        return out
