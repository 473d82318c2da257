"""Where the Hydra config tree lives: inside the wheel, or at the top of a checkout."""

from __future__ import annotations

from pathlib import Path


def conf_dir() -> str:
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError("resnorm's config tree (conf/train.yaml) was not found")
