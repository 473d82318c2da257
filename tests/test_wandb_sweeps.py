"""Every W&B sweep YAML under sweeps/ launches argument lists that compose into valid configs."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import pytest
import yaml

from resnorm.training.validate import check_config

SWEEPS = sorted((Path(__file__).parents[1] / "sweeps").glob("wandb_*.yaml"))


def sample(spec: dict, rng: random.Random) -> list:
    """Values an agent could pass for one parameter (all of a grid, a few of a range)."""
    if "value" in spec:
        return [spec["value"]]
    if "values" in spec:
        return list(spec["values"])
    dist = spec["distribution"]
    lo, hi = spec["min"], spec["max"]
    if dist == "int_uniform":
        return [lo, hi, rng.randint(lo, hi)]
    if dist == "log_uniform_values":
        return [lo, hi, math.exp(rng.uniform(math.log(lo), math.log(hi)))]
    if dist == "uniform":
        return [lo, hi, rng.uniform(lo, hi)]
    raise AssertionError(f"unhandled distribution {dist}")


def args_no_hyphens(params: dict) -> list[str]:
    """What W&B substitutes for ${args_no_hyphens}: key=value per parameter."""
    return [f"{k}={v}" for k, v in params.items()]


def test_sweep_files_exist():
    assert len(SWEEPS) >= 2


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_agent_arguments_compose_into_valid_configs(path, compose_cfg):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["command"][1:4] == ["resnorm", "train", "${args_no_hyphens}"]
    assert sweep["method"] in ("grid", "bayes", "random")
    rng = random.Random(0)
    names = list(sweep["parameters"])
    choices = [sample(sweep["parameters"][n], rng) for n in names]
    combos = list(itertools.product(*choices))
    for combo in rng.sample(combos, min(12, len(combos))):
        overrides = args_no_hyphens(dict(zip(names, combo, strict=True)))
        cfg = compose_cfg(*overrides)
        check_config(cfg)
        assert cfg.logger.name == "wandb"
        for key, value in zip(names, combo, strict=True):
            if "." in key:  # a config key, not a config group
                got = cfg
                for part in key.split("."):
                    got = got[part]
                assert got == pytest.approx(value) if isinstance(value, float) else got == value
