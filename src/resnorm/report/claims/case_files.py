"""The findings study, generated from the claims' needs: one conf/case/<name>.yaml per needed
cell and the study's ``+case`` list. Rewrite both after adding a claim or changing the cells
one needs (claims.registry) with

    python -m resnorm.report.claims.case_files

tests/test_report_cases.py fails while the files on disk differ from what this writes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from resnorm.paths import conf_dir
from resnorm.report.claims.needs import DIM, HEADS, Cell
from resnorm.report.claims.registry import cases, used_by

STUDY = "findings"


def render(cell: Cell) -> str:
    """The case file of one cell: its variant, then depth (heads, width where not the
    default), lr and warmup."""
    claims = ", ".join(used_by(cell))
    lr = f"{cell.lr:.1e}".replace("e-0", "e-").replace("e+0", "e")
    heads = f"  heads: {cell.heads}\n" if cell.heads != HEADS else ""
    dim = f"  dim: {cell.dim}\n" if cell.dim != DIM else ""
    return (
        "# @package _global_\n"
        f"# study={STUDY} case: {cell.arch} depth={cell.depth} lr={cell.lr:g} "
        f"warmup={cell.warmup}"
        + (f" heads={cell.heads}" if heads else "")
        + (f" dim={cell.dim}" if dim else "")
        + ".\n"
        f"# Needed by finding(s) {claims} (src/resnorm/report/claims/needs.py).\n"
        "defaults:\n"
        f"  - override /variant: {cell.arch}\n"
        "model:\n"
        f"  depth: {cell.depth}\n"
        f"{heads}"
        f"{dim}"
        "optim:\n"
        f"  lr: {lr}\n"
        f"  warmup_steps: {cell.warmup}\n"
    )


def case_list() -> str:
    return ",".join(sorted(cases()))


def write_all(conf: Path) -> list[str]:
    """Write every case file, drop stale ones, and set the study's case list."""
    folder = conf / "case"
    wanted = cases()
    for stale in folder.glob("*.yaml"):
        if stale.stem not in wanted:
            stale.unlink()
    for name, cell in wanted.items():
        (folder / f"{name}.yaml").write_text(render(cell))
    study = conf / "study" / f"{STUDY}.yaml"
    text = re.sub(r"(?m)^(\s*\+case: ).*$", lambda m: m.group(1) + case_list(), study.read_text())
    study.write_text(text)
    return sorted(wanted)


if __name__ == "__main__":
    names = write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(conf_dir()))
    print(f"wrote {len(names)} case files and the {STUDY} study's case list")
