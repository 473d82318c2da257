"""Claim (r), "residual connections and LayerNorm let models grow deeper and wider": the
interaction of pre_ln's advantage over plain with depth (8 vs 2) and with width (64 vs 32),
judged on synthetic studies whose truth is known; "wider" only where width is not saturated
(pre_ln at 64 beats pre_ln at 32); and the width as a setting of its own, so that runs of
the narrower cells never enter any other claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from resnorm.report.claims.case_files import render
from resnorm.report.claims.needs import DIM, Cell
from resnorm.report.claims.registry import CLAIMS, cases, claim
from resnorm.report.claims.rules import Context, finish
from resnorm.report.claims.verdicts import (
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    SUPPORTED,
    WORSE,
    resolve,
)

CLAIM_R = claim("r")
NARROW = 32


def _rows(cell: Cell, values: np.ndarray, metric: str = "test/acc", **extra) -> pd.DataFrame:
    seeds = len(values)
    return pd.DataFrame(
        {
            "task": "t",
            "arch": cell.arch,
            "depth": cell.depth,
            "dim": cell.dim,
            "heads": cell.heads,
            "lr": cell.lr,
            "warmup_steps": cell.warmup,
            "max_steps": 200,
            "seed": np.arange(seeds),
            "value": values,
            "metric": metric,
            "chance": 0.1 if metric == "test/acc" else 6.0,
            "diverged": False,
            "usable": True,
            "status": "completed",
            **extra,
        }
    )


def _study(
    plain: dict[tuple[int, int], float],
    rng: np.random.Generator,
    seeds: int = 8,
    sd: float = 0.01,
    metric: str = "test/acc",
    drop: tuple[Cell, ...] = (),
    pre: dict[tuple[int, int], float] | None = None,
) -> pd.DataFrame:
    """pre_ln scores ``pre`` (default WIDTH_MATTERS) at each (depth, width) of claim (r);
    plain scores ``plain`` there. A per-seed effect shared by every cell is what the pairing
    removes. For bits per char the same numbers are mirrored (lower is better)."""
    pre = WIDTH_MATTERS if pre is None else pre
    seed_effect = rng.normal(0.0, 0.03, seeds)
    frames = []
    for cell in CLAIM_R.needs:
        if cell in drop:
            continue
        mean = (pre if cell.arch == "pre_ln" else plain)[(cell.depth, cell.dim)]
        values = mean + seed_effect + rng.normal(0.0, sd, seeds)
        frames.append(_rows(cell, values if metric == "test/acc" else 3.0 - values, metric))
    return pd.concat(frames, ignore_index=True)


def _judge(runs: pd.DataFrame):
    f = CLAIM_R.test(Context("t", runs, runs))
    resolve(f.parts)
    return finish(f)


# pre_ln's score per (depth, width): width still matters (64 beats 32 by 0.05), or not
WIDTH_MATTERS = {(2, DIM): 0.85, (8, DIM): 0.85, (8, NARROW): 0.80}
SATURATED = {(2, DIM): 0.85, (8, DIM): 0.85, (8, NARROW): 0.85}
# plain's score per (depth, width); the advantage is pre_ln's score − these
GROWS = {(2, DIM): 0.83, (8, DIM): 0.70, (8, NARROW): 0.80}  # advantage 0.02, 0.15, 0.00
DEEPER_ONLY = {(2, DIM): 0.83, (8, DIM): 0.70, (8, NARROW): 0.65}  # same advantage when narrower
NULL = {(2, DIM): 0.80, (8, DIM): 0.80, (8, NARROW): 0.75}  # advantage 0.05 everywhere
# with SATURATED pre_ln: advantage 0.02, 0.15 and 0.00, as GROWS has with WIDTH_MATTERS
GROWS_SATURATED = {(2, DIM): 0.83, (8, DIM): 0.70, (8, NARROW): 0.85}


@pytest.mark.parametrize("metric", ["test/acc", "test/bpc"])
def test_a_planted_interaction_with_depth_and_width_is_found(metric):
    f = _judge(_study(GROWS, np.random.default_rng(1), metric=metric))
    assert [p.outcome for p in f.parts] == [BETTER, BETTER], [p.text() for p in f.parts]
    assert f.verdict == SUPPORTED and f.missing == []
    # headline: the deeper part, oriented (> 0: the advantage grows), in the metric's units
    assert f.effect == pytest.approx(0.13, abs=0.02) and f.n == 8
    assert f.parts[1].est.mean == pytest.approx(0.15, abs=0.02)


def test_an_advantage_that_does_not_grow_with_width_is_not_supported():
    f = _judge(_study(DEEPER_ONLY, np.random.default_rng(2), sd=0.003))
    assert f.parts[0].outcome == BETTER
    assert f.parts[1].outcome == EQUIVALENT  # the tight null is shown as such ...
    assert f.verdict == NOT_SUPPORTED and f.verdict_text() == "not supported (part 2: equivalent)"


@pytest.mark.parametrize("metric", ["test/acc", "test/bpc"])
def test_wider_is_not_judged_where_width_is_saturated(metric):
    """pre_ln scores the same at widths 32 and 64: a larger advantage at 64 (plain is worse
    there) says nothing about growing wider. The old rule called this supported; now the
    wider part is not testable, saying why with the numbers, and so is the claim."""
    f = _judge(_study(GROWS_SATURATED, np.random.default_rng(7), metric=metric, pre=SATURATED))
    assert f.parts[0].outcome == BETTER
    wide = f.parts[1]
    assert wide.outcome == NOT_TESTABLE and not wide.testable
    assert "width is saturated on this task" in wide.text() and "seeds=8" in wide.text()
    assert f.verdict == NOT_TESTABLE and f.missing == []
    check = [d for d in f.details if d.startswith("width check: pre_ln width 64 − width 32")]
    assert len(check) == 1 and not check[0].endswith("→ better"), f.details
    # the same interaction where width still matters is found (the rule is not "never")
    f = _judge(_study(GROWS, np.random.default_rng(7), metric=metric))
    assert f.verdict == SUPPORTED
    assert any(d.startswith("width check") and d.endswith("→ better") for d in f.details)


def test_a_refuted_deeper_part_refutes_the_claim_even_when_wider_is_not_testable():
    plain = {(2, DIM): 0.70, (8, DIM): 0.70, (8, NARROW): 0.85}  # advantage 0.15 at 2 and 8
    f = _judge(_study(plain, np.random.default_rng(8), sd=0.003, pre=SATURATED))
    assert [p.outcome for p in f.parts] == [EQUIVALENT, NOT_TESTABLE]
    assert f.verdict == NOT_SUPPORTED


def test_null_studies_rarely_declare_an_interaction():
    rng = np.random.default_rng(3)
    declared = 0
    for _ in range(40):
        f = _judge(_study(NULL, rng, sd=0.02))
        declared += sum(p.outcome in (BETTER, WORSE) for p in f.parts)
        assert f.verdict != SUPPORTED
    # 80 parts, each a one-sided t-test inside a Holm family: at most ~2.5% each under H0
    assert declared <= 4, declared


@pytest.mark.parametrize(
    "drop",
    [
        (Cell("plain", depth=2),),
        (Cell("plain", dim=NARROW),),
        (Cell("pre_ln", dim=NARROW), Cell("plain", dim=NARROW)),
    ],
)
def test_missing_cells_make_it_inconclusive_and_are_named(drop):
    f = _judge(_study(GROWS, np.random.default_rng(4), drop=drop))
    assert f.verdict == INCONCLUSIVE
    assert len(f.missing) == len(drop)
    for cell, line in zip(drop, f.missing, strict=True):
        assert line.startswith(f"t {cell.label()} (no runs")
    # a dim-64 run is never taken for the missing dim-32 cell (nor the other way round)
    if Cell("plain", dim=NARROW) in drop:
        assert "plain depth=8 lr=0.001 warmup=50 dim=32" in f.missing[-1]
        assert not f.parts[1].testable


def test_width_is_part_of_the_cell_and_of_its_case_file():
    narrow = Cell("pre_ln", dim=NARROW)
    assert Cell("pre_ln").case == "pre_ln" and Cell("pre_ln").label().endswith("warmup=50")
    assert narrow.case == "pre_ln_dim32" and narrow.label().endswith(" dim=32")
    assert Cell("plain", depth=2).case == "plain_d2"
    assert "  dim: 32\n" in render(narrow)
    assert "dim" not in render(Cell("pre_ln")).split("model:")[1]
    assert {"pre_ln_dim32", "plain_dim32", "plain_d2"} <= set(cases())


def test_the_narrow_case_composes_to_width_32(compose_cfg):
    cfg = compose_cfg("study=findings", "+case=pre_ln_dim32", "task=image_digits")
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert (model["variant"], model["depth"], model["dim"]) == ("pre_ln", 8, NARROW)
    assert cfg.optim.lr == pytest.approx(1e-3) and cfg.optim.warmup_steps == 50


# ---- the narrower cells never enter another claim ----

PROBES = (
    "init_grad_slope",
    "init_grad_spread",
    "init_cos_last",
    "final_cos_last",
    "final_train_loss",
    "gen_gap",
    "rms_drift",
    "sublayer_input_drift",
    "train_s_per_step",
    "init_attn_entropy",
    "init_attn_max_logit",
    "final_attn_entropy",
    "final_attn_max_logit",
)


def _every_claims_study(rng: np.random.Generator, seeds: int = 4) -> pd.DataFrame:
    """Every cell any claim needs, at the base width, with every column the claims read."""
    post_deepest = max(c.depth for c in CLAIMS for c in c.needs if c.arch == "post_ln")
    cells = sorted({cell for c in CLAIMS for cell in c.needs if cell.dim == DIM})
    frames = []
    for cell in cells:
        fails = cell.arch == "post_ln" and cell.depth == post_deepest
        values = np.full(seeds, 0.1) if fails else rng.normal(0.8, 0.03, seeds)
        frames.append(_with_columns(cell, values, rng, fails))
    return pd.concat(frames, ignore_index=True)


def _with_columns(cell: Cell, values: np.ndarray, rng, fails: bool = False) -> pd.DataFrame:
    n = len(values)
    curves = [pd.DataFrame({"step": [50, 100, 150, 200], "val/acc": np.linspace(0.2, v, 4)})
              for v in values]  # fmt: skip
    extra = {q: rng.normal(size=n) for q in PROBES}
    extra["train_s_per_step"] = 0.01 + np.abs(extra["train_s_per_step"]) / 100
    frame = _rows(cell, values, **extra)
    return frame.assign(
        diverged=fails,
        status="diverged" if fails else "completed",
        params=1000 * cell.depth + (0 if cell.arch == "no_norm" else 128),
        init_loss=2.3,
        test_loss=2.3 * (1 - values),
        val_curve=curves,
        **{"m_val_best/acc": [float(c["val/acc"].max()) for c in curves]},
    )


def _all_judged(runs: pd.DataFrame) -> dict[str, tuple]:
    found = [c.test(Context("t", runs, runs)) for c in CLAIMS if c.key != "r"]
    resolve([p for f in found if not f.not_testable and f.fixed is None for p in f.parts])
    return {
        f.id: (f.verdict_text(), f.effect, f.ci, f.n, f.details, f.missing, f.untestable)
        for f in map(finish, found)
    }


def test_runs_at_width_32_change_no_other_claim():
    """pre_ln and plain at width 32 (every depth and lr any claim reads, far-off values
    and probe quantities) leave every other claim's finding exactly as it was."""
    rng = np.random.default_rng(5)
    base = _every_claims_study(rng)
    narrow = []
    for arch in ("pre_ln", "plain"):
        for key, g in base[base["arch"] == arch].groupby(["depth", "lr", "warmup_steps", "heads"]):
            depth, lr, warmup, heads = key
            cell = Cell(arch, int(depth), float(lr), int(warmup), int(heads), dim=NARROW)
            values = np.clip(rng.normal(0.3, 0.2, len(g)), 0.0, 1.0)
            narrow.append(_with_columns(cell, values, rng).assign(init_grad_spread=50.0))
    both = pd.concat([base, *narrow], ignore_index=True)
    assert set(both["dim"]) == {DIM, NARROW}
    before, after = _all_judged(base), _all_judged(both)
    assert before.keys() == after.keys() == set("abcdefghijklmnopq")
    for key in before:  # exactly: the same numbers from the same runs (repr: NaN == NaN)
        assert repr(after[key]) == repr(before[key]), key
    # (k)'s reported plain − pre_ln, the comparison both narrow arms would enter, in particular
    assert any(line.startswith("plain − pre_ln (both)") for line in before["k"][4])


def test_a_study_at_another_width_throughout_is_judged_there():
    """Without runs at the default width (a study run with model.dim=32 throughout), the
    claims judge at the width it has, and no cell is reported missing for its width."""
    rng = np.random.default_rng(6)
    runs = _every_claims_study(rng).assign(dim=32)
    ctx = Context("t", runs, runs)
    assert ctx.base_dim == 32 and len(ctx.runs) == len(runs)
    f = claim("k").test(ctx)
    assert f.missing == [] and all(p.testable for p in f.parts)
