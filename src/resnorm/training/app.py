"""The Hydra application behind ``resnorm train`` (one call per job, multirun included)."""

from __future__ import annotations

import os
import sys
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from resnorm.errors import one_line_error
from resnorm.jobs.index import write_index
from resnorm.jobs.resume import previous_status, should_skip
from resnorm.outputs import run_key
from resnorm.paths import conf_dir

# One line per failed job; `resnorm train` exits non-zero when any job failed, after
# every job of a multirun has had its turn.
FAILURES: list[str] = []


def headline(summary: dict[str, Any]) -> str:
    m = summary["metrics"]
    tests = " ".join(f"{k}={v:.4f}" for k, v in m.items() if k.startswith("test/"))
    return (
        f"{summary['status']} {summary['task']} {summary['variant']} depth={summary['depth']} "
        f"seed={summary['seed']} steps={summary['steps']} {tests} wall={summary['wall_s']:.1f}s"
    )


def cap_threads(cfg: DictConfig, hc: Any) -> None:
    """Parallel launchers share the cores: give each job cores / n_jobs threads."""
    n_jobs = OmegaConf.select(hc, "launcher.n_jobs", default=None)
    if cfg.trainer.num_threads or not n_jobs or n_jobs < 1:
        return
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // n_jobs))


@hydra.main(config_path=conf_dir(), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    run_dir = hc.runtime.output_dir
    try:
        from resnorm.training.validate import check_config

        check_config(cfg)  # fail fast, before Lightning is even imported
        status = previous_status(run_dir, run_key(OmegaConf.to_container(cfg, resolve=True)))
        rerun_failed = bool(OmegaConf.select(cfg, "study.rerun_failed", default=False))
        if should_skip(status, rerun_failed):
            print(f"resnorm: skipped ({status} before) [{run_dir}]")
            return None
        cap_threads(cfg, hc)
        from resnorm.training.run import run_job

        summary = run_job(cfg, run_dir, checked=True)  # check_config ran above
        print(f"resnorm: {headline(summary)}")
        m = summary["metrics"]
        return m.get("test/acc", m.get("test/bpc"))
    except Exception as exc:
        if os.environ.get("RESNORM_DEBUG"):
            raise
        FAILURES.append(f"{run_dir}: {one_line_error(exc)}")
        print(f"resnorm: error: {one_line_error(exc)} [{run_dir}]", file=sys.stderr)
        return None
    finally:
        if hc.mode == RunMode.MULTIRUN:
            write_index(hc.sweep.dir)


if __name__ == "__main__":  # DDP ranks > 0 are started as `python -m resnorm.training.app`
    main()
