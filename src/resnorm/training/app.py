"""The Hydra application behind ``resnorm train`` (one call per job, multirun included)."""

from __future__ import annotations

import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from resnorm.errors import one_line_error
from resnorm.paths import conf_dir

# One line per failed job; `resnorm train` exits non-zero when any job failed, after
# every job of a multirun has had its turn.
FAILURES: list[str] = []


@hydra.main(config_path=conf_dir(), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    run_dir = HydraConfig.get().runtime.output_dir
    try:
        from resnorm.training.validate import check_config

        check_config(cfg)  # fail fast, before Lightning is even imported
        from resnorm.training.run import run_job

        summary = run_job(cfg, run_dir)
    except Exception as exc:
        if os.environ.get("RESNORM_DEBUG"):
            raise
        FAILURES.append(f"{run_dir}: {one_line_error(exc)}")
        print(f"resnorm: error: {one_line_error(exc)} [{run_dir}]", file=sys.stderr)
        return None
    m = summary["metrics"]
    print(
        f"resnorm: {summary['status']} {summary['task']} {summary['variant']} "
        f"depth={summary['depth']} seed={summary['seed']} steps={summary['steps']} "
        + " ".join(f"{k}={v:.4f}" for k, v in m.items() if k.startswith("test/"))
        + f" wall={summary['wall_s']:.1f}s"
    )
    return m.get("test/acc", m.get("test/bpc"))
