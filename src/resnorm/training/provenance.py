"""Versions, git state and device: what a summary needs to be reproducible."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import torch


@functools.cache
def git_state() -> dict[str, Any] | None:
    """Commit and dirty flag when resnorm runs from a git checkout; None otherwise."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def versions() -> dict[str, Any]:
    import pytorch_lightning

    import resnorm

    return {
        "resnorm": resnorm.__version__,
        "torch": torch.__version__,
        "lightning": pytorch_lightning.__version__,
        "git": git_state(),
    }


def device_name(accelerator: str) -> str:
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({torch.get_num_threads()} threads)"
