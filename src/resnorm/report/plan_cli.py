"""``resnorm plan``: which runs an adaptive study needs next, and why.

Reads the study preset (conf/study/NAME.yaml: its primary claims and ``study.adaptive``
schedule) and the runs so far (run directories or exports, as ``resnorm report`` does),
judges the primary claims at this look's level (claims.adaptive) and prints, per cell, the
seeds done, the next round and the reason, then the `resnorm train -m` lines that run it.
Exit status 0; 2 on a bad argument or an unreadable source.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

from resnorm.paths import conf_dir
from resnorm.report.claims.adaptive import Schedule, commands, plan
from resnorm.report.claims.catalog import all_findings
from resnorm.report.sources.classify import ReportError, classify
from resnorm.report.sources.collect import load_sources

PROG = "resnorm plan"


def study_spec(name: str) -> dict:
    """The ``study`` block and the swept task(s) of conf/study/NAME.yaml."""
    path = Path(conf_dir()) / "study" / f"{name}.yaml"
    if not path.is_file():
        raise ReportError(f"no study preset {name!r} ({path} does not exist)")
    cfg = yaml.safe_load(path.read_text()) or {}
    spec = dict(cfg.get("study") or {})
    params = ((cfg.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    spec["tasks"] = [t for t in str(params.get("task", "")).split(",") if t]
    return spec


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="run/sweep dirs or exports")
    p.add_argument("--study", default="findings", help="the study preset (default findings)")
    p.add_argument("--task", action="append", default=[], help="task(s) to plan (default: "
                   "the preset's, and every task in the sources)")  # fmt: skip
    args = p.parse_args(argv)
    try:
        spec = study_spec(args.study)
        schedule = Schedule.of(spec.get("adaptive")) or Schedule()
        primary = [str(k) for k in spec.get("primary") or []]
        if not primary:
            raise ReportError(f"study {args.study!r} declares no primary claims (study.primary)")
        runs = pd.DataFrame(columns=["task", "arch", "seed", "status", "usable"])
        if args.sources:
            runs = load_sources([classify(s) for s in args.sources])[0].runs
    except (ReportError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    tasks = args.task or sorted({*spec["tasks"], *runs["task"].dropna()})
    # every look judges at α / K: the same level the report uses for this study's runs
    found = all_findings(runs, primary, schedule.looks) if len(runs) else []
    plans = plan(found, runs, tasks, primary, schedule)
    k = schedule.looks
    print(f"study {args.study}: primary ({', '.join(primary)}); seeds {schedule.start}, +"
          f"{schedule.step} per round, at most {schedule.max}: {k} looks, each at "
          f"α = 0.05/{k} = {schedule.alpha:.4g} (Bonferroni over the looks)")  # fmt: skip
    for f in found:
        if f.id in primary and f.task in tasks:
            print(f"  ({f.id}) {f.task}: {f.verdict_text()}")
    for c in plans:
        nxt = f"seeds {c.seeds.start}-{c.seeds.stop - 1}" if len(c.seeds) else "none"
        print(f"  {c.task} {c.cell.case}: {c.done} seeds done; next: {nxt} ({c.why})")
    done = sum(c.done for c in plans)
    todo = sum(len(c.seeds) for c in plans)
    print(f"runs: {done} done, {todo} next; a fixed design of 8 seeds: {8 * len(plans)}")
    lines = commands(plans, args.study)
    print("\n".join(lines) if lines else "nothing left to run: every cell has stopped")
    return 0
