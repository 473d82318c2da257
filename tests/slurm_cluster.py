"""A one-node SLURM cluster on this machine, for tests that submit real SLURM jobs.

``start_cluster(root)`` runs munged, slurmctld and slurmd with every file under ``root``
(their own munge key and socket, state, spool, logs, a generated ``slurm.conf``) on free
localhost ports, so it touches no system configuration and can run beside other clusters.
It needs root (slurmd launches jobs as their owner) and the Debian ``slurm-wlm`` and
``munge`` binaries; where anything is missing or a daemon does not come up in time it
raises ``ClusterUnavailable`` with the reason (and the daemon's last log lines).

There is no accounting database (slurmdbd, which needs a MySQL server): slurmctld writes
a job-completion log instead (``jobcomp/filetxt``), read with ``sacct --completion``
(``SlurmCluster.finished``). Plain ``sacct``, which submitit polls for the state of a job
that ended without a result, says accounting is disabled; submitit then relies on the
result files its jobs write, and a job that is cancelled never gets one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sacct", "scancel", "sinfo", "srun")
PARTITION = "debug"
NODE = "localhost"
SBIN = "/usr/sbin:/sbin"  # where Debian puts the daemons; a non-login PATH may lack it


class ClusterUnavailable(RuntimeError):
    """This machine cannot run the test cluster; the message says why."""


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    env: dict[str, str]  # for any process that talks to the cluster (SLURM_CONF, PATH)
    partition: str = PARTITION
    start_s: float = 0.0  # from starting munged to the node reported idle
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def cmd(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=60)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {out.returncode}: {out.stderr.strip()}")
        return out.stdout

    def queue(self) -> list[dict[str, str]]:
        """The jobs slurmctld knows now (pending, running, completing): id (an array task's
        is ``<array id>_<task>``), raw id (its own job id), state, name."""
        keys = ("id", "raw_id", "state", "name")
        rows = self.cmd("squeue", "-h", "-o", "%i|%A|%T|%j", "-p", self.partition, check=False)
        return [dict(zip(keys, r.split("|"), strict=True))
                for r in rows.splitlines() if r.count("|") == len(keys) - 1]  # fmt: skip

    def finished(self) -> dict[str, str]:
        """Raw job id -> final state of every job that has ended (the completion log)."""
        out = self.cmd("sacct", "--completion", "-o", "JobID,State", "--parsable2", "-n")
        return dict(r.split("|", 1) for r in out.splitlines() if "|" in r)

    def stop(self) -> None:
        """Cancel what is left in the partition, then stop slurmd, slurmctld and munged."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            self.cmd("scancel", "-p", self.partition, check=False)
            deadline = time.monotonic() + 30
            while self.queue() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name in reversed(DAEMONS):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)

    def log_tail(self, name: str, lines: int = 8) -> str:
        """The daemon's last log lines, or what it printed before it had a log."""
        for suffix in (".log", ".out"):
            path = self.root / "log" / f"{name}{suffix}"
            text = path.read_text(errors="replace").strip() if path.exists() else ""
            if text:
                return " | ".join(text.splitlines()[-lines:])
        return f"(no {name} log)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_resources() -> tuple[int, int]:
    """CPUs (at most 2, so two 1-CPU jobs run side by side) and MB of memory to declare:
    slurmd drains a node that has less than its slurm.conf line says."""
    cpus = max(1, min(2, os.cpu_count() or 1))
    mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return cpus, max(1, mb * 3 // 4)


def slurm_conf(root: Path, ctld_port: int, d_port: int) -> str:
    cpus, mem = node_resources()
    r = root
    return f"""\
ClusterName=resnormtest
SlurmctldHost={NODE}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r}/munge/munge.socket
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
# no cgroups, no accounting daemon: processes tracked through /proc
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={r}/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=5
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


def missing_requirement() -> str | None:
    if os.geteuid() != 0:
        return "the test SLURM cluster needs root (slurmd runs jobs as their owner)"
    path = f"{os.environ.get('PATH', '')}:{SBIN}"
    absent = [b for b in DAEMONS + CLIENTS if shutil.which(b, path=path) is None]
    if absent:
        return f"not installed: {', '.join(absent)} (apt-get install slurm-wlm munge)"
    return None


def cluster_env(conf: Path) -> dict[str, str]:
    # a test run inside a real SLURM job must not leak that job's settings into this cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env["SLURM_CONF"] = str(conf)
    env["PATH"] = f"{env.get('PATH', '')}:{SBIN}"
    return env


def write_files(root: Path) -> Path:
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o755)  # munged refuses a socket dir others may write to
    key = root / "munge" / "munge.key"
    key.write_bytes(secrets.token_bytes(128))
    key.chmod(0o400)
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, free_port(), free_port()))
    return conf


def start_cluster(root: Path, timeout_s: float = 60.0) -> SlurmCluster:
    """Start the cluster under ``root`` and wait (at most ``timeout_s``) for its node to be
    idle; raise ClusterUnavailable when it can't be."""
    reason = missing_requirement()
    if reason:
        raise ClusterUnavailable(reason)
    conf = write_files(root)
    cluster = SlurmCluster(root=root, conf=conf, env=cluster_env(conf))
    m = root / "munge"
    commands = {
        "munged": ["munged", "--foreground", "--force", f"--key-file={m}/munge.key",
                   f"--socket={m}/munge.socket", f"--pid-file={m}/munged.pid",
                   f"--seed-file={m}/munge.seed", f"--log-file={root}/log/munged.log"],
        "slurmctld": ["slurmctld", "-D", "-i", "-f", str(conf)],
        "slurmd": ["slurmd", "-D", "-f", str(conf), "-N", NODE],
    }  # fmt: skip
    t0 = time.monotonic()
    try:
        for name, argv in commands.items():
            with open(root / "log" / f"{name}.out", "w") as out:
                cluster.procs[name] = subprocess.Popen(
                    argv, env=cluster.env, stdout=out, stderr=subprocess.STDOUT, cwd=root
                )
            if name == "munged":
                wait_for(lambda: (m / "munge.socket").exists(), cluster, name, t0 + timeout_s)
        wait_for(lambda: node_state(cluster) == "idle", cluster, "slurmd", t0 + timeout_s)
    except BaseException:
        cluster.stop()
        raise
    cluster.start_s = time.monotonic() - t0
    return cluster


def node_state(cluster: SlurmCluster, fmt: str = "%T") -> str:
    """sinfo's view of the node: its state (``%T``), or e.g. ``%T %E`` (and why)."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", fmt, "-n", NODE], env=cluster.env,
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    return out.stdout.strip()


def wait_for(ready, cluster: SlurmCluster, name: str, deadline: float) -> None:
    """Poll ``ready`` until ``deadline``; raise ClusterUnavailable, with the logs of the
    daemon that died or, on a timeout, of ``name`` (and the node's state), if it fails."""
    while not ready():
        dead = [n for n, p in cluster.procs.items() if p.poll() is not None]
        if dead:
            raise ClusterUnavailable(f"test SLURM cluster: {dead[0]} exited: "
                                     f"{cluster.log_tail(dead[0])}")  # fmt: skip
        if time.monotonic() > deadline:
            state = node_state(cluster, "%T %E") if "slurm" in name else ""
            logs = " || ".join(f"{n}: {cluster.log_tail(n, 4)}" for n in ("slurmctld", "slurmd"))
            raise ClusterUnavailable(
                f"test SLURM cluster: {name} not ready in time (node: {state or '?'}); "
                f"{logs if 'slurm' in name else cluster.log_tail(name)}"
            )
        time.sleep(0.2)
