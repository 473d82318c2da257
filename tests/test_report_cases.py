"""The findings study runs exactly the cells the findings need (needs.py <-> conf/case/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from resnorm.paths import conf_dir
from resnorm.report.needs import NEEDS, SEEDS, TASKS, all_cells, cases
from resnorm.report.variants import canonical_arch

CONF = Path(conf_dir())


def study_params() -> dict[str, list[str]]:
    study = yaml.safe_load((CONF / "study" / "findings.yaml").read_text())
    return {k: str(v).split(",") for k, v in study["hydra"]["sweeper"]["params"].items()}


def test_every_case_file_is_a_needed_cell_and_every_cell_has_a_case():
    on_disk = {p.stem for p in (CONF / "case").glob("*.yaml")}
    assert on_disk == set(cases())
    assert sorted(study_params()["+case"]) == sorted(cases())


def test_findings_study_size():
    params = study_params()
    assert params["seed"] == [str(s) for s in SEEDS]
    assert set(params["task"]) == set(TASKS)
    n = len(params["task"]) * len(params["+case"]) * len(params["seed"])
    assert n == len(TASKS) * len(all_cells()) * len(SEEDS) == 300


@pytest.mark.parametrize("name", sorted(cases()))
def test_case_composes_to_its_cell(compose_cfg, name):
    cell = cases()[name]
    cfg = compose_cfg("study=findings", f"+case={name}", "task=image_digits")
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert canonical_arch(model, model["variant"]) == cell.arch
    assert model["variant"] == cell.arch
    assert (model["depth"], cfg.optim.lr, cfg.optim.warmup_steps) == (
        cell.depth,
        pytest.approx(cell.lr),
        cell.warmup,
    )
    assert cfg.trainer.max_steps == 200


def test_each_claim_needs_at_least_two_groups():
    assert set(NEEDS) == set("abcdefghijklm")
    assert all(len(cells) >= 2 for cells in NEEDS.values())
