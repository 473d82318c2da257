"""The Hydra application behind ``resnorm train`` (one call per job, multirun included)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from resnorm.errors import one_line_error
from resnorm.jobs import study_progress
from resnorm.jobs.claims import Claim, ClaimOptions, acquire
from resnorm.jobs.index import refresh_index
from resnorm.jobs.job_dir import remove_empty_parents, remove_if_only_ours
from resnorm.jobs.packing import done_before, pack_id, read_manifest
from resnorm.jobs.resume import previous_status, retry_hint, should_skip
from resnorm.outputs import FAILED, run_key
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


def headline_metric(summary: dict[str, Any]) -> float | None:
    m = summary["metrics"]
    return m.get("test/acc", m.get("test/bpc"))


def failed(run_dir: str, exc: BaseException) -> None:
    if os.environ.get("RESNORM_DEBUG"):
        raise exc
    FAILURES.append(f"{run_dir}: {one_line_error(exc)}")
    print(f"resnorm: error: {one_line_error(exc)} [{run_dir}]", file=sys.stderr)


def skipped(config: dict[str, Any], run_dir: str) -> str | None:
    """The status ``run_dir`` already holds this run's answer with (and said so), or None."""
    status = done_before(config, run_dir)
    if status:
        print(f"resnorm: skipped ({status} before) [{run_dir}]")
    return status


def rejected(run_dir: str, exc: Exception, hc: Any, multirun: bool) -> None:
    """A config ``check_config`` refused: nothing ran, so the run directory that Hydra made
    for this job goes (a study's sweep directory and dated folders others use stay)."""
    if (removed := remove_if_only_ours(Path(run_dir), hc)) and not multirun:
        remove_empty_parents(Path(run_dir))
    if os.environ.get("RESNORM_DEBUG"):
        raise exc
    FAILURES.append(f"{run_dir}: {one_line_error(exc)}")
    where = f" [{run_dir}]" if multirun or not removed else ""  # a study names the job
    print(f"resnorm: error: {one_line_error(exc)}{where}", file=sys.stderr)


def skipped_failed(cfg: DictConfig, run_dir: str, multirun: bool) -> None:
    """A run that failed before is not retried unless asked. In a study that is one line
    among its progress (docs/sweeps.md); a single run that did nothing is an error."""
    hint = retry_hint(cfg)
    if multirun:
        print(f"resnorm: skipped (failed before; {hint} retries it) [{run_dir}]", flush=True)
        return
    msg = (
        f"this run failed before (see its summary.json) and was not run again; to retry it, "
        f"run the same command with {hint} (it resumes from its last checkpoint if it has "
        f"one; add trainer.resume=false to start afresh)"
    )
    FAILURES.append(f"{run_dir}: {msg}")
    print(f"resnorm: error: {msg} [{run_dir}]", file=sys.stderr)


class RankClaim:
    """What DDP ranks above 0 hold: they train under rank 0's claim."""

    def release(self, untrained: str = "") -> None:
        pass


def claim(cfg: DictConfig | dict[str, Any], run_dir: str) -> Claim | RankClaim | None:
    """Claim ``run_dir`` for this process, or say who holds it and return None."""
    if int(os.environ.get("LOCAL_RANK", 0)) or int(os.environ.get("NODE_RANK", 0)):
        return RankClaim()
    got = acquire(run_dir, ClaimOptions.from_config(cfg.get("claims")))
    if isinstance(got, Claim):
        if got.took_over:  # a killed launcher's run, resumed here from its checkpoint
            print(f"resnorm: took over a stale claim ({got.took_over}) [{run_dir}]", flush=True)
        return got
    print(f"resnorm: skipped (claimed by {got.describe()}) [{run_dir}]", flush=True)
    return None


def report(ended: list[tuple[str, dict[str, Any]]], rows: list[dict[str, Any]] | None) -> None:
    """Each member's line (``ended``: run directory, summary), followed by the study's
    progress (from the refreshed index ``rows``) in a multirun, and ending with the run
    directory as the error lines do; one print per line, so parallel jobs' lines never mix."""
    progress = study_progress.status(rows) if rows is not None else ""
    for run_dir, summary in ended:
        tail = f" {progress}" if progress else ""
        print(f"resnorm: {headline(summary)}{tail} [{run_dir}]", flush=True)


def announce_run_dir(run_dir: str) -> None:
    """A single run's first line, before torch loads: where it writes, and the one command
    that resumes it (``resnorm resume``) if it is stopped. DDP ranks above 0 stay quiet."""
    if int(os.environ.get("LOCAL_RANK", 0)) or int(os.environ.get("NODE_RANK", 0)):
        return
    where = shlex.quote(run_dir)
    print(f"resnorm: run directory {run_dir} (if stopped, resume it: resnorm resume {where})",
          flush=True)  # fmt: skip


def write_hydra_files(member: dict[str, Any]) -> None:
    """A member's ``.hydra/`` files, as its job alone writes them (read by people and tools
    that expect a Hydra job directory)."""
    hydra_dir = Path(member["run_dir"]) / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    for name, text in member["hydra_files"].items():
        (hydra_dir / name).write_text(text)


def run_packed(cfg: DictConfig, hc: Any) -> list[float | None]:
    """Train the members of ``cfg.pack_manifest`` (written by the pack sweeper) as one pack;
    each member is checked, skipped and reported on its own, as if it were its own job."""
    try:
        manifest = read_manifest(cfg.pack_manifest)
    except ValueError as exc:
        failed(hc.runtime.output_dir, exc)
        return []
    ended: list[tuple[str, dict[str, Any]]] = []
    try:
        ended = train_members(cfg, hc, manifest)
    finally:
        rows = refresh_index(manifest["sweep_dir"])
    report(ended, rows)
    return [headline_metric(s) for _, s in ended]


def train_members(
    cfg: DictConfig, hc: Any, manifest: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """The members that trained here: (run directory, summary) each."""
    from resnorm.training.validate import check_config  # lazy: imports torch

    cfgs, run_dirs, claims = [], [], []
    for member in manifest["members"]:
        run_dir = member["run_dir"]
        held = None
        try:
            member_cfg = OmegaConf.create(member["config"])
            OmegaConf.set_struct(member_cfg, True)  # as Hydra hands a job its config
            check_config(member_cfg)  # a rejected member's directory is never made
            held = claim(member["config"], run_dir)
            if held is None:
                continue
            write_hydra_files(member)
            if status := skipped(member["config"], run_dir):  # maybe finished elsewhere
                held.release(untrained=f"{status} before")
                continue
        except Exception as exc:
            if held is not None:
                held.release()
            failed(run_dir, exc)
            continue
        cfgs.append(member_cfg)
        run_dirs.append(run_dir)
        claims.append(held)
    if not cfgs:
        return []
    try:
        summaries = train_claimed(cfg, hc, cfgs, run_dirs)  # [] when the pack failed
        return list(zip(run_dirs, summaries, strict=True)) if summaries else []
    finally:
        for held in claims:
            held.release()


def train_claimed(
    cfg: DictConfig, hc: Any, cfgs: list[DictConfig], run_dirs: list[str]
) -> list[dict[str, Any]]:
    cap_threads(cfg, hc)
    from resnorm.training.run import run_pack  # lazy: imports Lightning

    # the pack that trains: the manifest's members less those claimed or finished elsewhere
    # (its id finds the checkpoint of a killed pack of exactly these runs)
    keys = [run_key(OmegaConf.to_container(c, resolve=True)) for c in cfgs]
    pid = pack_id(list(zip(run_dirs, keys, strict=True)))
    try:
        return run_pack(cfgs, run_dirs, checked=True, pack_id=pid)
    except Exception as exc:
        for run_dir in run_dirs:
            failed(run_dir, exc)
        return []


@hydra.main(config_path=conf_dir(), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | list[float | None] | None:
    hc = HydraConfig.get()
    if cfg.get("pack_manifest"):
        return run_packed(cfg, hc)
    run_dir = hc.runtime.output_dir
    multirun = hc.mode == RunMode.MULTIRUN
    if not multirun:  # a study's jobs are named by its end line (resnorm.sweeps.study_end)
        announce_run_dir(run_dir)
    held: Claim | RankClaim | None = None
    summary, untrained = None, ""
    from resnorm.training.validate import check_config

    try:
        check_config(cfg)  # fail fast, before Lightning is even imported
    except Exception as exc:
        rejected(run_dir, exc, hc, multirun)
        return None
    try:
        held = claim(cfg, run_dir)
        if held is None:
            return None
        status = previous_status(run_dir, run_key(OmegaConf.to_container(cfg, resolve=True)))
        rerun_failed = bool(OmegaConf.select(cfg, "study.rerun_failed", default=False))
        if status == FAILED and not rerun_failed:
            untrained = f"{status} before"
            skipped_failed(cfg, run_dir, multirun)
            return None
        if should_skip(status, rerun_failed):
            untrained = f"{status} before"
            print(f"resnorm: skipped ({status} before) [{run_dir}]")
            return None
        cap_threads(cfg, hc)
        from resnorm.training.run import run_job

        summary = run_job(cfg, run_dir, checked=True)  # check_config ran above
        return headline_metric(summary)
    except Exception as exc:
        failed(run_dir, exc)
        return None
    finally:
        if held is not None:
            held.release(untrained)
        rows = refresh_index(hc.sweep.dir) if multirun else None
        if summary is not None:
            report([(run_dir, summary)], rows)


if __name__ == "__main__":  # DDP ranks > 0 are started as `python -m resnorm.training.app`
    main()
