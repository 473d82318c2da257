"""The findings study runs exactly the cells the findings need (needs.py <-> conf/case/), each
case composes its named variant instead of repeating its fields, and the report names a
run's architecture from its variant plus the fields it overrode."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from resnorm.paths import conf_dir
from resnorm.report.claims.needs import DIM, HEADS, SEEDS, TASKS
from resnorm.report.claims.registry import NEEDS, all_cells, cases
from resnorm.report.sources.arch import LEGACY_ARCH_FIELDS, arch_name, arch_of, legacy_arch
from resnorm.report.sources.rows import summary_row
from resnorm.variants import definitions, variant_overrides

CONF = Path(conf_dir())


def study_params(name: str = "findings") -> dict[str, list[str]]:
    study = yaml.safe_load((CONF / "study" / f"{name}.yaml").read_text())
    return {k: str(v).split(",") for k, v in study["hydra"]["sweeper"]["params"].items()}


def model_of(cfg) -> dict:
    return OmegaConf.to_container(cfg.model, resolve=True)


def test_every_case_file_is_a_needed_cell_and_every_cell_has_a_case():
    on_disk = {p.stem for p in (CONF / "case").glob("*.yaml")}
    assert on_disk == set(cases())
    assert sorted(study_params()["+case"]) == sorted(cases())


def test_case_files_are_generated_from_the_needs():
    """No hand-kept list: each file is exactly what claims.case_files writes for its cell."""
    from resnorm.report.claims.case_files import case_list, render

    for name, cell in cases().items():
        assert (CONF / "case" / f"{name}.yaml").read_text() == render(cell), name
    assert ",".join(study_params()["+case"]) == case_list()


def test_findings_study_size():
    params = study_params()
    assert params["seed"] == [str(s) for s in SEEDS]
    # by default the task whose reference flattens within its budget; the others are
    # parts of their own (task=nlp_charlm), each judged by the same claims
    assert params["task"] == ["image_digits"] and set(params["task"]) <= set(TASKS)
    n = len(params["task"]) * len(params["+case"]) * len(params["seed"])
    assert n == len(all_cells()) * len(SEEDS) == 61 * 8
    assert len(SEEDS) >= 8  # paired t-tests at a Holm-corrected level need the seeds


@pytest.mark.parametrize("name", sorted(cases()))
def test_case_selects_its_variant_and_sets_only_depth_lr_warmup(name):
    cell = cases()[name]
    case = yaml.safe_load((CONF / "case" / f"{name}.yaml").read_text())
    assert case["defaults"] == [{"override /variant": cell.arch}]
    assert set(case) == {"defaults", "model", "optim"}
    want = {"depth"} | ({"heads"} if cell.heads != HEADS else set())
    assert set(case["model"]) == want | ({"dim"} if cell.dim != DIM else set())
    assert set(case["optim"]) == {"lr", "warmup_steps"}


@pytest.mark.parametrize("name", sorted(cases()))
def test_case_composes_to_its_cell(compose_cfg, name):
    cell = cases()[name]
    cfg = compose_cfg("study=findings", f"+case={name}", "task=image_digits")
    model = model_of(cfg)
    assert model["variant"] == cell.arch
    # the variant's own definition, at the cell's depth: nothing else overridden
    overrides = variant_overrides(model, model["variant"])
    default_depth = definitions()[cell.arch]["depth"]
    want = {} if cell.depth == default_depth else {"depth": cell.depth}
    want |= {"heads": cell.heads} if cell.heads != HEADS else {}
    want |= {"dim": cell.dim} if cell.dim != DIM else {}
    assert overrides == want
    assert arch_name(model["variant"], overrides, LEGACY_ARCH_FIELDS) == cell.arch
    assert legacy_arch(model, model["variant"]) == cell.arch  # old summaries: same name
    assert (model["depth"], model["dim"], cfg.optim.lr, cfg.optim.warmup_steps) == (
        cell.depth,
        cell.dim,
        pytest.approx(cell.lr),
        cell.warmup,
    )
    assert (cfg.trainer.max_steps, cfg.trainer.val_every) == (600, 100)  # the task's own budget


def test_each_claim_needs_at_least_two_groups():
    assert set(NEEDS) == set("abcdefghijklmnopqr")
    assert all(len(cells) >= 2 for cells in NEEDS.values())


def test_quick_study_sweeps_residual_on_off_by_norm_pre_post_none(compose_cfg):
    """The six named variants of the quick study are exactly on/off x pre/post/none."""
    names = study_params("quick")["variant"]
    grid = set()
    for name in names:
        model = model_of(compose_cfg("study=quick", f"variant={name}"))
        assert model["variant"] == name and variant_overrides(model, name) == {}
        grid.add((model["residual"], model["norm_position"]))
    assert len(names) == 6 and grid == {
        (r, p) for r in ("on", "off") for p in ("pre", "post", "none")
    }


@pytest.mark.parametrize(
    "overrides,arch",
    [
        ((), "pre_ln"),
        (("model.depth=2", "model.dim=32"), "pre_ln"),  # a setting, not an architecture
        (("model.norm=rmsnorm",), "rmsnorm_pre"),  # exactly another named variant
        (("model.qk_norm=true",), "qk_norm"),
        (("model.activation=relu",), "pre_ln[activation=relu]"),
        (("model.norm=rmsnorm", "model.norm_eps=1e-6"), "pre_ln[norm=rmsnorm,norm_eps=1e-06]"),
    ],
)
def test_architecture_is_the_variant_plus_what_was_overridden(compose_cfg, overrides, arch):
    model = model_of(compose_cfg("variant=pre_ln", *overrides))
    summary = {"variant": "pre_ln", "variant_overrides": variant_overrides(model, "pre_ln")}
    assert arch_of(summary, model) == arch


def test_an_override_the_block_ignores_keeps_the_variant(compose_cfg):
    model = model_of(compose_cfg("variant=no_norm", "model.norm=rmsnorm"))
    overrides = variant_overrides(model, "no_norm")
    assert overrides == {"norm": "rmsnorm"}  # recorded as it was set ...
    assert arch_of({"variant": "no_norm", "variant_overrides": overrides}, model) == "no_norm"


def test_unknown_variant_records_no_overrides():
    assert variant_overrides({"variant": "mine", "residual": "on"}, "mine") is None


def test_arch_fields_come_from_the_summary_model_dict(compose_cfg):
    """With the full block config recorded, every field of it but the sizes names the
    architecture (here ``layerscale_init``, absent from the legacy list)."""
    model = model_of(compose_cfg("variant=layerscale", "model.layerscale_init=0.01"))
    block = {k: v for k, v in model.items() if k not in ("variant", "compile")}
    s = {
        "status": "completed",
        "variant": "layerscale",
        "variant_overrides": variant_overrides(model, "layerscale"),
        "model": block,
        "config": {"model": model},
    }
    assert summary_row(s, "r", "dir")["arch"] == "layerscale[layerscale_init=0.01]"
    old = {k: v for k, v in s.items() if k not in ("variant_overrides", "model")}
    assert summary_row(old, "r", "dir")["arch"] == "layerscale"  # legacy: field signature


def test_legacy_summaries_are_named_by_their_fields():
    """Summaries written before ``variant_overrides``: the quick study labelled runs by their
    swept fields (``on_pre``); they are matched to the conf/variant file they equal."""

    def old_summary(label: str, **fields: object) -> dict:
        model = {**definitions()["pre_ln"], "variant": label, **fields}
        top = {k: model[k] for k in ("residual", "norm_position", "norm", "depth", "dim")}
        return {"status": "completed", "variant": label, **top, "config": {"model": model}}

    assert summary_row(old_summary("on_pre"), "r", "dir")["arch"] == "pre_ln"
    off_none = old_summary("off_none", residual="off", norm_position="none")
    assert summary_row(off_none, "r", "dir")["arch"] == "plain"
    bool_residual = {**definitions()["post_ln"], "residual": True}
    assert legacy_arch(bool_residual, "x") == "post_ln"  # YAML 1.1 read `on` as true
    assert legacy_arch({**definitions()["pre_ln"], "activation": "relu"}, "mine") == "mine"
    assert legacy_arch({}, None) == "unknown"
