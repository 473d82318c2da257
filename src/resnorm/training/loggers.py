"""Experiment loggers: a CSV log always, plus W&B, TensorBoard or nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.loggers import CSVLogger, Logger

from resnorm.outputs import COMPLETED, DIVERGED


def wandb_mode(requested: str) -> str:
    """'auto' means online only when an API key is configured; never wait on a login."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        has_login = "api.wandb.ai" in netrc.read_text()
    except OSError:
        has_login = False
    return "online" if has_login else "offline"


def build_loggers(
    cfg: DictConfig, run_dir: str, flat: dict[str, Any], tags: list[str]
) -> list[Logger]:
    # Lightning's CSV logger writes <run_dir>/csv/metrics.csv (the contract's METRICS_CSV).
    loggers: list[Logger] = [CSVLogger(save_dir=run_dir, name="csv", version="")]
    name = cfg.logger.name
    if name == "wandb":
        from pytorch_lightning.loggers import WandbLogger

        run = init_wandb(cfg, run_dir, flat, tags)
        loggers.append(WandbLogger(experiment=run, save_dir=run_dir))
    elif name == "tensorboard":
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=run_dir, name="tensorboard", version=""))
    elif name not in ("csv", "none"):
        raise ValueError(
            f"logger={name!r} is not a valid choice; allowed: csv, none, tensorboard, wandb"
        )
    return loggers


def init_wandb(cfg: DictConfig, run_dir: str, flat: dict[str, Any], tags: list[str]) -> Any:
    """Start this job's W&B run; fall back to offline when the server can't be reached.

    The online attempt is bounded by ``logger.init_timeout`` seconds, so a bad key or a
    missing network costs at most that, and the run itself always goes on.
    """
    import wandb

    kw = {
        "project": cfg.logger.project, "entity": cfg.logger.entity, "group": cfg.logger.group,
        "job_type": cfg.task.name, "tags": tags, "name": os.path.basename(run_dir),
        "dir": run_dir, "config": flat, "reinit": "create_new",
    }  # fmt: skip
    if wandb_mode(cfg.logger.mode) == "online":
        settings = wandb.Settings(init_timeout=float(cfg.logger.init_timeout))
        try:
            return wandb.init(mode="online", settings=settings, **kw)
        except Exception as exc:  # no network, bad key, server down: never block the run
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            print(
                f"resnorm: W&B online init failed ({reason}); logging offline instead. "
                f"Sync later: wandb sync {run_dir}/wandb/offline-run-*",
                file=sys.stderr,
            )
            run = wandb.run
            if run is not None:
                run.finish(exit_code=1, quiet=True)
    return wandb.init(mode="offline", **kw)


def finish_wandb(loggers: list[Logger], status: str) -> None:
    """Close the W&B run among a run's loggers, recording its status; a pack's members
    each have their own run, open side by side (``reinit="create_new"``)."""
    if "wandb" not in sys.modules:
        return
    from pytorch_lightning.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger):
            run = lg.experiment
            run.summary["status"] = status
            run.finish(exit_code=0 if status in (COMPLETED, DIVERGED) else 1)
