"""Per-run fixed overhead inside a multirun: imports, set-up, evaluation, teardown.

T(n) is the wall time of ``resnorm train -m seed=0..n-1`` with a 1-step budget; the
per-run overhead is (T(n) - T(1)) / (n - 1), so process start-up and imports, paid once
per multirun, are excluded, and everything paid per job is included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from resnorm.bench.timing import table


def multirun_wall(n: int, extra: list[str]) -> float:
    seeds = ",".join(str(i) for i in range(n))
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "resnorm.cli", "train", "-m", f"seed={seeds}",
               "trainer.max_steps=1", f"hydra.sweep.dir={d}", *extra]  # fmt: skip
        t0 = time.perf_counter()
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        return time.perf_counter() - t0


def run(n: int = 6, extra: list[str] | None = None) -> list[dict[str, object]]:
    rows = []
    for task in ("image_digits", "nlp_charlm", "speech_synth"):
        args = [f"task={task}", *(extra or [])]
        multirun_wall(1, args)  # warm caches (generated datasets, bytecode)
        one, many = multirun_wall(1, args), multirun_wall(n, args)
        rows.append(
            {
                "task": task,
                "T(1) s": one,
                f"T({n}) s": many,
                "overhead per run s": (many - one) / (n - 1),
            }  # fmt: skip
        )
    return rows


if __name__ == "__main__":
    print(table(run()))
