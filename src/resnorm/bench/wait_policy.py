"""Training steps/s under each OpenMP thread wait policy, on free and on busy cores.

Each cell is a fresh process (OpenMP reads the policy once, when torch loads) training
image_digits through the full harness; "busy" adds a neighbour process spinning on one
core, as a second job or any other program would. "auto" is what ``resnorm`` does by
default (``resnorm.omp.choose_wait_policy``).
"""

from __future__ import annotations

import os
import subprocess
import sys

POLICIES = ("spin (OpenMP default)", "PASSIVE", "auto")


def child(policy: str, steps: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true")
    if policy == "PASSIVE":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [sys.executable, "-m", "resnorm.bench.wait_policy", "--child", policy, str(steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return float(out.stdout.split()[-1])


def run(steps: int = 100) -> list[dict[str, object]]:
    rows = []
    for load in ("free", "busy"):
        spinner = None
        if load == "busy":
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            speeds = {p: child(p, steps) for p in POLICIES}
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
        rows.append({"cores": load, **{f"{p} steps/s": v for p, v in speeds.items()}})
    return rows


def _child(policy: str, steps: int) -> None:
    """Runs in the fresh process: choose the policy (auto) before torch loads, then train.
    This module imports nothing that loads torch, so the choice takes effect."""
    if policy == "auto":
        from resnorm.omp import choose_wait_policy

        choose_wait_policy()
    from resnorm.bench.harness import bench_config, harness

    print(harness(bench_config(steps)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]))
    else:
        from resnorm.bench.timing import table  # torch loads here, in the parent only

        print(table(run()))
