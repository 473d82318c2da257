"""Experiment loggers: a CSV log always, plus W&B, TensorBoard or nothing.

A run's tracker identity follows its run directory: the W&B id is derived from the run key
and the directory, so a resumed run continues its W&B run; the group is the study (the
study preset's name, else the sweep directory's name, else the run's own name) and the
name ``<group>/<job dir>`` is unique across studies.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger, Logger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from resnorm.outputs import COMPLETED, DIVERGED, run_key

# summary keys the TensorBoard HParams tab gets as short columns, besides the flat config
HEADLINE = ("task", "variant", "residual", "norm_position", "norm", "depth", "dim", "heads",
            "seed", "lr", "warmup_steps", "status")  # fmt: skip


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


def wandb_run_id(run_dir: str | os.PathLike[str], key: str) -> str:
    """The W&B id of the run with run key ``key`` in ``run_dir``: the run key (16 hex
    digits) and 8 of the directory's hash. A resumed run gets its id again; the same config
    in another directory (another study, a repeat) gets another."""
    where = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:8]
    return f"{key}{where}"


def _sweep_dir() -> Path | None:
    """The multirun's sweep directory, when this process is a Hydra multirun job."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:
        return None
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    return Path(hc.sweep.dir).resolve() if hc.mode == RunMode.MULTIRUN else None


def tracker_names(cfg: DictConfig, run_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """(group, name) of the run: ``logger.group`` when set, else the study preset's name,
    else the sweep directory's name, else the run directory's own; name = ``<group>/<job
    dir>`` in a sweep (job dirs such as ``0_image_digits_pre_ln_d2_s0`` repeat in every
    sweep), the directory's name for a single run."""
    run = Path(run_dir).resolve()
    study = OmegaConf.select(cfg, "study.name", default=None)
    sweep = _sweep_dir()
    in_sweep = sweep is not None and run != sweep and run.is_relative_to(sweep)
    own = str(study or (sweep.name if in_sweep else run.name))
    group = OmegaConf.select(cfg, "logger.group", default=None) or own
    job = str(run.relative_to(sweep)) if in_sweep else run.name
    return str(group), job if job == own else f"{own}/{job}"


def build_loggers(
    cfg: DictConfig, run_dir: str, flat: dict[str, Any], tags: list[str]
) -> list[Logger]:
    # Lightning's CSV logger writes <run_dir>/csv/metrics.csv (the contract's METRICS_CSV).
    loggers: list[Logger] = [CSVLogger(save_dir=run_dir, name="csv", version="")]
    name = cfg.logger.name
    if name == "wandb":
        from pytorch_lightning.loggers import WandbLogger

        # rank 0 only: Lightning's loggers write there alone, and a second process would
        # open the same run id (DDP ranks > 0 run this too)
        if rank_zero_only.rank == 0:
            run = init_wandb(cfg, run_dir, flat, tags)
            loggers.append(WandbLogger(experiment=run, save_dir=run_dir))
    elif name == "tensorboard":
        from pytorch_lightning.loggers import TensorBoardLogger

        # no hp_metric placeholder: the run's hparams go in with its real final metrics
        loggers.append(TensorBoardLogger(save_dir=run_dir, name="tensorboard", version="",
                                         default_hp_metric=False))  # fmt: skip
    elif name not in ("csv", "none"):
        raise ValueError(
            f"logger={name!r} is not a valid choice; allowed: csv, none, tensorboard, wandb"
        )
    return loggers


_ONLINE_FAILED: list[str] = []  # this process could not reach W&B (one entry: the reason)


def init_wandb(cfg: DictConfig, run_dir: str, flat: dict[str, Any], tags: list[str]) -> Any:
    """Start this job's W&B run, or continue it (a resumed run has the same id); fall back to
    offline when the server can't be reached.

    The online attempt is bounded by ``logger.init_timeout`` seconds, so a bad key or a
    missing network costs at most that, and the run itself always goes on. W&B's own
    console lines are silenced (a pack's members would interleave them); resnorm prints
    one line per run when it finishes (``finish_trackers``).
    """
    import wandb

    group, name = tracker_names(cfg, run_dir)
    run_id = wandb_run_id(run_dir, run_key(OmegaConf.to_container(cfg, resolve=True)))
    kw = {
        "project": cfg.logger.project, "entity": cfg.logger.entity, "group": group,
        "job_type": cfg.task.name, "tags": tags, "name": name, "id": run_id, "resume": "allow",
        "dir": run_dir, "config": flat, "reinit": "create_new",
    }  # fmt: skip
    if wandb_mode(cfg.logger.mode) == "online" and not _ONLINE_FAILED:
        settings = wandb.Settings(init_timeout=float(cfg.logger.init_timeout), silent=True)
        try:
            return wandb.init(mode="online", settings=settings, **kw)
        except Exception as exc:  # no network, bad key, server down: never block the run
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            print(
                f"resnorm: W&B online init failed ({reason}); logging offline instead. "
                f"Sync later: wandb sync {run_dir}/wandb/offline-run-*",
                file=sys.stderr,
            )
            _ONLINE_FAILED.append(reason)  # the next members of a pack go offline at once
            # The W&B service still holds the failed attempt's run id ("run ID ... is in
            # use" for the offline run of the same id): start a fresh one. No other run of
            # this process is open yet, since later members skip the online attempt.
            wandb.teardown()
    return wandb.init(mode="offline", settings=wandb.Settings(silent=True), **kw)


def tracker_ids(loggers: list[Logger]) -> dict[str, str]:
    """What summary.json records of the run's trackers: ``wandb_run_id`` with W&B."""
    wb = _wandb_runs(loggers)
    return {"wandb_run_id": wb[0].id} if wb else {}


def finish_trackers(loggers: list[Logger], summary: dict[str, Any]) -> None:
    """End a run's trackers: TensorBoard gets the run's hparams with its final metrics, the
    W&B run its status, and is closed (a pack's members each have their own run, open side
    by side, ``reinit="create_new"``)."""
    try:
        log_final_hparams(loggers, summary)
    except Exception as exc:  # a tracker's trouble never fails a run, nor hides its error
        print(f"resnorm: warning: TensorBoard hparams not written: {type(exc).__name__}: {exc}",
              file=sys.stderr)  # fmt: skip
    status = summary["status"]
    for run in _wandb_runs(loggers):
        run.summary["status"] = status
        run.summary["run_key"] = summary.get("run_key")
        offline = bool(getattr(run.settings, "_offline", False))
        where = f"offline, sync: wandb sync {run.settings.sync_dir}" if offline else run.url
        run.finish(exit_code=0 if status in (COMPLETED, DIVERGED) else 1)
        # W&B's own lines are silenced (init_wandb): this one line per run replaces them
        print(f"resnorm: W&B run {run.id} [{run.name}] {status}: {where}", flush=True)


def _wandb_runs(loggers: list[Logger]) -> list[Any]:
    if "wandb" not in sys.modules:
        return []
    from pytorch_lightning.loggers import WandbLogger

    return [lg.experiment for lg in loggers if isinstance(lg, WandbLogger)]


def hparams_of(summary: dict[str, Any]) -> dict[str, Any]:
    """The run's hyper-parameters for TensorBoard: the headline fields (status as text),
    then the whole config flat (``model.depth``, ``optim.lr``, ...)."""
    params = {k: summary[k] for k in HEADLINE if k in summary}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:  # TensorBoard takes numbers, text and booleans; the rest goes in as text
            params[prefix[:-1]] = node if isinstance(node, bool | int | float | str) else str(node)

    walk(summary.get("config") or {}, "")
    return params


def log_final_hparams(loggers: list[Logger], summary: dict[str, Any]) -> None:
    """Write the run's hyper-parameters with its final metrics (test/*, val_best/*) to its
    TensorBoard log, for the HParams tab, and to ``hparams.yaml``."""
    from pytorch_lightning.core.saving import save_hparams_to_yaml
    from pytorch_lightning.loggers import TensorBoardLogger

    tbs = [lg for lg in loggers if isinstance(lg, TensorBoardLogger)]
    if not tbs or rank_zero_only.rank != 0:  # Lightning's loggers write on rank 0 alone
        return
    metrics = {
        k: float(v) for k, v in (summary.get("metrics") or {}).items()
        if k.startswith(("test/", "val_best/")) and isinstance(v, int | float)
    }  # fmt: skip
    params = hparams_of(summary)
    for lg in tbs:
        # the HParams tab needs a metric to list a run: a run without any (failed before its
        # first validation) still shows, with its status
        lg.log_hyperparams(params, metrics or {"steps": float(summary.get("steps", 0))},
                           step=summary.get("steps"))  # fmt: skip
        # Lightning writes hparams.yaml once, at the fit's start (then still {}): rewrite it
        save_hparams_to_yaml(os.path.join(lg.log_dir, lg.NAME_HPARAMS_FILE), lg.hparams)
        lg.finalize("success")  # flush and close the event file
