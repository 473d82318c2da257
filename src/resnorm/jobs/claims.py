"""Claims: one launcher at a time trains a run directory, however many share the study.

Before a job trains a run it creates ``<run dir>/.claim.json`` with ``O_EXCL`` (atomic on
local filesystems and NFS v3+), naming the host, process and a random token, and a
daemon thread touches the file every ``heartbeat_s`` while the job runs. Any other
launcher that finds the file leaves the run alone while the claim is live. A claim is
stale when its heartbeat is older than ``stale_s``, or at once when it was made on this
machine by a process that no longer exists; a stale claim is taken over under a short
``.claim.json.takeover`` lock (so two launchers never both remove one claim and one of
them a fresh one), and the run resumes from its checkpoint. Every claim made is appended
to ``<run dir>/claims.log``: who trained what, and who took over from whom; a claim given
back without training (the run had finished under another launcher meanwhile) says so.

Torch-free: the sweeper and the app both use it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLAIM = ".claim.json"
CLAIM_LOG = "claims.log"
TAKEOVER_LOCK_S = 60.0  # a takeover lock older than this was left by a dead launcher


@dataclass(frozen=True)
class ClaimOptions:
    heartbeat_s: float = 30.0
    stale_s: float = 300.0

    @classmethod
    def from_config(cls, node: Any) -> ClaimOptions:
        """From the ``claims`` config node (a DictConfig or dict; None: the defaults)."""
        if not node:
            return cls()
        out = cls(float(node.get("heartbeat_s", 30.0)), float(node.get("stale_s", 300.0)))
        check_claim_options(out)
        return out


def check_claim_options(opts: ClaimOptions) -> None:
    if not opts.heartbeat_s > 0:
        raise ValueError(f"claims.heartbeat_s={opts.heartbeat_s!r} must be positive")
    if not opts.stale_s > 2 * opts.heartbeat_s:
        raise ValueError(
            f"claims.stale_s={opts.stale_s!r} must exceed twice claims.heartbeat_s="
            f"{opts.heartbeat_s!r}, or a busy owner's claim would look stale"
        )


def _boot_id() -> str:
    """Identifies this machine (and boot): pids are only comparable under the same one."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Holder:
    """What a claim file says, and whether it still counts."""

    host: str
    pid: int
    token: str
    age_s: float
    stale: bool
    why: str  # why it is stale ("" while live)

    def describe(self) -> str:
        state = f"stale: {self.why}" if self.stale else f"heartbeat {self.age_s:.0f}s ago"
        return f"{self.host} pid {self.pid}, {state}"


def inspect(run_dir: str | os.PathLike[str], opts: ClaimOptions) -> Holder | None:
    """The claim on ``run_dir``, or None when there is none (or it just went away)."""
    path = Path(run_dir) / CLAIM
    try:
        age = time.time() - path.stat().st_mtime
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = int(data.get("pid", -1))
    why = ""
    if data.get("boot_id") == _boot_id() and not _pid_alive(pid):
        why = "its process is gone"
    elif age > opts.stale_s:
        why = f"no heartbeat for {age:.0f}s > claims.stale_s={opts.stale_s:g}"
    return Holder(str(data.get("host", "?")), pid, str(data.get("token", "")), age, bool(why), why)


@dataclass
class Claim:
    """A claim this process holds; ``release()`` it when the run's summary is final."""

    run_dir: Path
    token: str
    opts: ClaimOptions
    took_over: str = ""  # the stale claim this one replaced, described ("" if none)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.run_dir / CLAIM

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="resnorm-claim", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.opts.heartbeat_s):
            try:
                os.utime(self.path)
            except OSError:
                return  # taken over after all (a stalled process): the new owner's now

    def release(self, untrained: str = "") -> None:
        """Give the run back; ``untrained`` says why this claim did not train it (logged)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if untrained:
            _log(self.run_dir, f"released by {_me(self.token)}, not trained: {untrained}")
        try:
            if json.loads(self.path.read_text()).get("token") == self.token:
                self.path.unlink()
        except (OSError, ValueError):
            pass


def _me(token: str) -> str:
    return f"{socket.gethostname()} pid {os.getpid()} token {token[:8]}"


def _log(run_dir: Path, text: str) -> None:
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n"
    fd = os.open(run_dir / CLAIM_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())  # one write with O_APPEND: lines never interleave
    finally:
        os.close(fd)


def _create(run_dir: Path, opts: ClaimOptions) -> Claim | None:
    token = uuid.uuid4().hex
    data = {"host": socket.gethostname(), "pid": os.getpid(), "boot_id": _boot_id(),
            "token": token, "claimed_at": time.time()}  # fmt: skip
    try:
        fd = os.open(run_dir / CLAIM, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    return Claim(run_dir, token, opts)


def _remove_stale(run_dir: Path, seen: Holder, opts: ClaimOptions) -> bool:
    """Remove the stale claim ``seen`` under the takeover lock; False if another launcher
    is taking it over or the claim changed meanwhile."""
    lock = run_dir / (CLAIM + ".takeover")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            if time.time() - lock.stat().st_mtime > TAKEOVER_LOCK_S:
                lock.unlink()  # left by a launcher that died mid-takeover
        except OSError:
            pass
        return False
    os.close(fd)
    try:
        now = inspect(run_dir, opts)
        if now is None or now.token != seen.token or not now.stale:
            return False
        (run_dir / CLAIM).unlink()
        return True
    finally:
        lock.unlink(missing_ok=True)


def acquire(run_dir: str | os.PathLike[str], opts: ClaimOptions) -> Claim | Holder:
    """Claim ``run_dir`` (creating it), taking over a stale claim; return the Claim, or the
    live Holder that keeps it. The heartbeat runs from here until ``release()``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    took_over: Holder | None = None
    for _ in range(5):  # a claim may vanish or turn stale between two looks
        claim = _create(run_dir, opts)
        if claim is not None:
            claim.took_over = took_over.describe() if took_over else ""
            claim.start_heartbeat()
            extra = f" (took over from {took_over.describe()})" if took_over else ""
            _log(run_dir, f"claimed by {_me(claim.token)}{extra}")
            return claim
        holder = inspect(run_dir, opts)
        if holder is None:
            continue
        if not holder.stale or not _remove_stale(run_dir, holder, opts):
            return holder  # live, or another launcher is taking it over right now
        took_over = holder
    held = inspect(run_dir, opts)
    if held is None:
        raise RuntimeError(f"cannot claim {run_dir}: the claim file keeps changing")
    return held
