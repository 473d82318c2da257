"""Claims as units: each claim is one ``Claim`` (statement, source, needed cells, test,
minimum effects, distance from its source's setting), listed once in claims.registry, and
the findings study and the report's claims come from that list."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import resnorm.report.claims as claims_pkg
from resnorm.paths import conf_dir
from resnorm.report.claims.case_files import case_list
from resnorm.report.claims.claim import BUDGET, Claim
from resnorm.report.claims.finding import Finding
from resnorm.report.claims.needs import MIN_SEEDS, Cell
from resnorm.report.claims.registry import CLAIMS, all_cells, cases, claim, used_by
from resnorm.report.claims.rules import PROBE_MIN_EFFECTS, Context
from resnorm.report.claims.verdicts import INCONCLUSIVE

KEYS = tuple("abcdefghijklmnopqr")
SEEDS = 5  # every needed cell complete; (d), (e) pick a depth on seeds 0–1, judge on 2–4


def claim_objects() -> list[tuple[str, Claim]]:
    """Every Claim defined at module level anywhere in the claims package."""
    found = []
    for info in pkgutil.iter_modules(claims_pkg.__path__):
        module = importlib.import_module(f"{claims_pkg.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, Claim) and value.test.__module__ == module.__name__:
                found.append((f"{module.__name__}.{name}", value))
    return found


def test_every_key_has_exactly_one_claim_and_it_is_registered():
    assert [c.key for c in CLAIMS] == list(KEYS)  # report order, no key twice
    defined = claim_objects()
    assert sorted(c.key for _, c in defined) == list(KEYS), defined  # none unregistered
    for where, c in defined:
        assert claim(c.key) is c, where
        # defined next to its test function, in the module that holds it
        assert where.rsplit(".", 1)[0] == c.test.__module__, where
    with pytest.raises(KeyError):
        claim("z")


def test_every_claim_states_what_a_unit_needs():
    for c in CLAIMS:
        assert c.statement.strip() and c.source.strip() and c.paper.strip(), c.key
        assert c.needs and all(isinstance(cell, Cell) for cell in c.needs), c.key
        assert len(set(c.needs)) == len(c.needs), c.key  # no cell twice
        assert all(cell.case for cell in c.needs), c.key
        assert set(c.probes) <= set(PROBE_MIN_EFFECTS), c.key
        assert c.min_effects == {q: PROBE_MIN_EFFECTS[q] for q in c.probes}
    # every probe threshold is some claim's
    assert {q for c in CLAIMS for q in c.probes} == set(PROBE_MIN_EFFECTS)


def test_probe_parts_only_on_declared_quantities():
    with pytest.raises(ValueError, match="does not declare"):
        claim("a").probe_part("x", None, 0, "gen_gap")  # type: ignore[arg-type]


def test_findings_preset_runs_exactly_the_claims_cells():
    study = yaml.safe_load((Path(conf_dir()) / "study" / "findings.yaml").read_text())
    on_disk = str(study["hydra"]["sweeper"]["params"]["+case"]).split(",")
    wanted = {cell.case for c in CLAIMS for cell in c.needs}
    assert len(on_disk) == len(set(on_disk))
    assert set(on_disk) == wanted == set(cases())
    assert ",".join(on_disk) == case_list()
    assert sorted({cell for c in CLAIMS for cell in c.needs}) == all_cells()
    for cell in all_cells():
        assert used_by(cell) == sorted(c.key for c in CLAIMS if cell in c.needs)
        assert used_by(cell)


def _runs(cells: tuple[Cell, ...], seed: int = 0) -> pd.DataFrame:
    """Synthetic usable runs of ``cells`` (SEEDS each) with every column the claims read.
    Plain Post-LN diverges at its deepest needed depth, where claim (e) is judged."""
    rng = np.random.default_rng(seed)
    post_deepest = max((c.depth for c in cells if c.arch == "post_ln"), default=None)
    rows = []
    for cell in cells:
        fails = cell.arch == "post_ln" and cell.depth == post_deepest and post_deepest > 8
        for s in range(SEEDS):
            value = 0.1 if fails else float(rng.normal(0.8, 0.03))
            # width matters on this task ((r)'s "wider" part is judged only where it does)
            value -= 0.1 if (cell.arch, cell.dim) == ("pre_ln", 32) else 0.0
            steps = [50, 100, 150, 200]
            curve = pd.DataFrame({"step": steps, "val/acc": np.linspace(0.2, value, 4)})
            r = rng.normal(size=12)
            rows.append(
                {
                    "task": "t",
                    "arch": cell.arch,
                    "depth": cell.depth,
                    "dim": cell.dim,
                    "heads": cell.heads,
                    "lr": cell.lr,
                    "warmup_steps": cell.warmup,
                    "max_steps": 200,
                    "seed": s,
                    "value": value,
                    "metric": "test/acc",
                    "chance": 0.1,
                    "diverged": fails,
                    "usable": True,
                    "status": "diverged" if fails else "completed",
                    "params": 1000 * cell.depth + (0 if cell.arch == "no_norm" else 128),
                    "init_grad_slope": r[0],
                    "init_grad_spread": r[1],
                    "init_cos_last": r[2],
                    "final_cos_last": r[3],
                    "final_train_loss": 1 + abs(r[4]),
                    "gen_gap": r[5],
                    "rms_drift": abs(r[6]),
                    "sublayer_input_drift": abs(r[6]) / 2,
                    "train_s_per_step": 0.01 + abs(r[7]) / 100,
                    "init_attn_entropy": r[8],
                    "init_attn_max_logit": r[9],
                    "final_attn_entropy": r[10],
                    "final_attn_max_logit": r[11],
                    "m_val_best/acc": float(curve["val/acc"].max()),
                    "init_loss": 2.3,
                    "test_loss": 2.3 * (1 - value) + float(rng.normal(0, 0.05)),
                    "val_curve": curve,
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("key", KEYS)
def test_test_returns_its_claims_finding_and_its_needs_suffice(key):
    """On runs of exactly the cells the claim needs, its test returns the Finding of that
    claim, and every tested part has its seeds: the needs cover what the test reads."""
    c = claim(key)
    runs = _runs(c.needs)
    f = c.test(Context("t", runs, runs))
    assert isinstance(f, Finding)
    assert (f.id, f.claim, f.source, f.task) == (c.key, c.statement, c.source, "t")
    assert f.cells == c.needs and f.paper == c.paper.replace(BUDGET, "t 200 steps")
    assert BUDGET not in f.paper  # the distance names the budget the runs had, not a constant
    assert f.missing == []  # every needed cell has its seeds
    assert f.needs.startswith("t: ") and all(cell.label() in f.needs for cell in c.needs)
    if f.fixed is not None:  # (i), (j): exact checks
        assert f.fixed != INCONCLUSIVE
    else:
        assert f.parts and all(p.testable for p in f.parts), [p.text() for p in f.parts]
        assert all(p.seeds >= MIN_SEEDS for p in f.parts)


@pytest.mark.parametrize("key", KEYS)
def test_without_a_needed_cell_the_finding_says_it_is_missing(key):
    c = claim(key)
    dropped, kept = c.needs[0], c.needs[1:]
    runs = _runs(kept)
    f = c.test(Context("t", runs, runs))
    assert len(f.missing) == 1 and dropped.label() in f.missing[0]
