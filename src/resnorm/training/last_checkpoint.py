"""The checkpoint a run writes (``last.ckpt``) and the one a relaunch resumes from.

``last.ckpt`` is never half-written: it is written to a temporary file in its own folder,
fsynced and renamed into place (Lightning writes to the system temp folder and *copies*
the file over ``last.ckpt`` when that is another filesystem, so a full disk left a
truncated checkpoint under its final name). The checkpoint before it is kept as
``last.prev.ckpt`` until the fit ends, for a relaunch to fall back on if ``last.ckpt``
cannot be read.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins import TorchCheckpointIO
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from resnorm.outputs import fsync_dir

LAST = "last.ckpt"
PREV = "last.prev.ckpt"
CORRUPT = ".corrupt"  # an unreadable checkpoint moves to <name>.corrupt: never read again
TIME_CHECK_EVERY = 10  # steps between timed-checkpoint checks when several ranks must agree


class LastCheckpoint(pl.callbacks.ModelCheckpoint):
    """``last.ckpt`` every ``every_steps`` steps, at least every ``seconds`` of training, and
    at the end of the fit, always under that one name.

    Lightning's ModelCheckpoint takes one trigger (steps or time), saves at the end only when
    it saved nothing before, and numbers a ``last`` file it did not write (``last-v1.ckpt``);
    a run needs both triggers, its final state on disk, and the one file a relaunch resumes
    from. A save due on a step that validates waits for that validation: a resume from a
    checkpoint taken before it would never run it.
    """

    def __init__(self, dirpath: str, every_steps: int = 0, seconds: float | None = None) -> None:
        super().__init__(
            dirpath=dirpath, save_last=True, save_top_k=0,
            every_n_train_steps=every_steps or None, enable_version_counter=False,
        )  # fmt: skip
        self.every_steps, self.seconds = every_steps, seconds
        self._time_check_every = 1
        self._pending = self._validated = False  # a save waits / a validation since the last

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        # ranks agree on a timed save through a broadcast, a device sync: not on every step
        self._time_check_every = 1 if trainer.world_size == 1 else TIME_CHECK_EVERY
        # Lightning's default writer, not one the trainer was given, makes way for ours
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        step = trainer.global_step
        due = self.every_steps > 0 and step % self.every_steps == 0
        if not due and self.seconds and step % self._time_check_every == 0:
            late = time.monotonic() - self._last_time_checked >= self.seconds
            due = trainer.strategy.broadcast(late)  # rank 0's clock decides for every rank
        if not due or self._should_skip_saving_checkpoint(trainer):
            return
        # validation every val_check_batch batches, counted across epochs (as build_trainer sets)
        batch = trainer.fit_loop.epoch_loop.total_batch_idx + 1
        if trainer.enable_validation and batch % trainer.val_check_batch == 0:
            self._pending = True
        else:
            self._save_last(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._validated = True
        if self._pending:
            self._save_last(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._validated or self._last_global_step_saved != trainer.global_step:
            self._save_last(trainer)
        # the final state is on disk, whole: a finished run keeps only last.ckpt
        if trainer.is_global_zero:
            Path(self.dirpath or ".", PREV).unlink(missing_ok=True)

    def _save_last(self, trainer: pl.Trainer) -> None:
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._last_time_checked = time.monotonic()
        self._pending = self._validated = False


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint bytes (``torch.save`` of the same dict), written by
    ``write_checkpoint``: never half a file under the checkpoint's name."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_checkpoint(path, buffer.getbuffer())


def _temp(path: Path) -> Path:
    # one fixed name: a write that a kill cut short is overwritten by the next one
    return path.with_name(f".{path.name}.tmp")


def write_checkpoint(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it, rename it over
    ``path``, fsync the folder. A failed write removes its temporary file (the space it
    took is free again) and leaves ``path`` as it was."""
    if path.name == LAST:
        _keep_previous(path)
    tmp = _temp(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # os.write names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    fsync_dir(path.parent)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _keep_previous(last: Path) -> None:
    """Make ``last.prev.ckpt`` a hard link to the current ``last.ckpt`` before a new one
    is written. A link, not a copy or a rename: it takes no space (the disk may be nearly
    full), frees the older prev before the new write starts, and ``last.ckpt`` is never
    missing. Where the filesystem has no hard links there is no prev: the rename alone
    keeps ``last.ckpt`` whole."""
    prev, link = last.with_name(PREV), _temp(last.with_name(PREV))
    try:
        if not last.is_file() or (prev.exists() and os.path.samefile(last, prev)):
            return
        link.unlink(missing_ok=True)
        os.link(last, link)
        os.replace(link, prev)
    except OSError:
        link.unlink(missing_ok=True)


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint at ``path`` cannot be read, or None when it reads whole.

    A structural check (the zip archive and, where torch wrote them, its CRCs), not an
    unpickling: a checkpoint that ``weights_only`` refuses must fail the run, not be set
    aside as if it were damaged.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
            if not any(r.filename.endswith("data.pkl") for r in records):
                return "no data.pkl record: not a torch checkpoint"
            if any(r.CRC for r in records):  # torch can be told to skip CRCs: none to test
                bad = archive.testzip()
                if bad is not None:
                    return f"record {bad} fails its CRC check"
    except Exception as exc:  # a truncated archive, a read error: unreadable either way
        return f"{type(exc).__name__}: {exc}"
    return None


def resume_path(ckpt_dir: str | Path) -> str | None:
    """The checkpoint a relaunch resumes from, or None to start afresh.

    ``last.ckpt`` when it reads whole; else ``last.prev.ckpt`` when that does; else None
    (the run starts again from step 0). An unreadable checkpoint is moved aside, with one
    line on stdout, so no relaunch reads it again. Every rank of a DDP job reaches the
    same answer; only rank 0 moves files and prints.
    """
    ckpt_dir = Path(ckpt_dir)
    rank_zero = rank_zero_only.rank == 0
    if rank_zero:  # writes a kill cut short
        for name in (LAST, PREV):
            _temp(ckpt_dir / name).unlink(missing_ok=True)
    bad: list[tuple[Path, str]] = []
    for path in (ckpt_dir / LAST, ckpt_dir / PREV):
        problem = checkpoint_problem(path) if path.is_file() else None
        if path.is_file() and problem is None:
            break
        if problem is not None:
            bad.append((path, problem))
    else:
        path = None
    if bad and rank_zero:
        _set_aside(bad, path)
    return str(path) if path is not None else None


def _set_aside(bad: list[tuple[Path, str]], resume: Path | None) -> None:
    """Move the unreadable checkpoints to ``<name>.corrupt`` and say so in one line."""
    moved = []
    for path, problem in bad:
        dest = path.with_name(path.name + CORRUPT)
        os.replace(path, dest)
        moved.append(f"checkpoint {path} is unreadable ({problem}): moved to {dest.name}")
    then = f"resuming from {resume}" if resume else "starting the run again from step 0"
    print(f"resnorm: {'; '.join(moved)}; {then}", flush=True)
