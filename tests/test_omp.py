"""The OpenMP wait policy is chosen from how busy the cores are, before torch loads."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from resnorm.omp import busy_cores, choose_wait_policy

HAS_PROC_STAT = Path("/proc/stat").is_file()


def test_a_policy_the_user_set_is_kept():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert choose_wait_policy(env) is None and env == {"OMP_WAIT_POLICY": "ACTIVE"}


@pytest.mark.skipif(not HAS_PROC_STAT, reason="needs Linux /proc/stat")
def test_a_busy_neighbour_makes_threads_sleep():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start spinning
        assert busy_cores() >= 0.5
        env: dict[str, str] = {}
        assert choose_wait_policy(env) == "PASSIVE" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    finally:
        spinner.kill()
        spinner.wait()
