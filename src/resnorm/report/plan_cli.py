"""``resnorm plan``: which runs an adaptive study needs next, and why.

Reads the study preset (conf/study/NAME.yaml: its primary claims and ``study.adaptive``
schedule) and the runs so far (run directories or exports, as ``resnorm report`` does),
judges the primary claims at this look's level (claims.adaptive) and prints, per cell, the
seeds done, the next round and the reason, then the `resnorm train -m` lines that run it.
For the frontier study (a preset with ``study.frontier_bars``): per seed, the next learning
rate of the search that brackets its max stable LR (``frontier_search``). ``--run-into DIR``
runs each round's lines (into one sweep directory) and plans again, until nothing is left.
Exit status 0; 2 on a bad argument or an unreadable source; a failed round's exit status.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from resnorm.paths import conf_dir
from resnorm.report import frontier_search
from resnorm.report.analysis.frontier_bar import configured_bars
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
    spec["params"] = params
    return spec


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="run/sweep dirs or exports")
    p.add_argument("--study", default="findings", help="the study preset (default findings)")
    p.add_argument("--task", action="append", default=[], help="task(s) to plan (default: "
                   "the preset's, and every task in the sources)")  # fmt: skip
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUES",
                   help="frontier: narrow a swept key, e.g. --only model.depth=8")  # fmt: skip
    p.add_argument("--run-into", metavar="DIR", help="run each round's lines with "
                   "hydra.sweep.dir=DIR, plan again from the sources and DIR, until nothing "
                   "is left to run")  # fmt: skip
    args = p.parse_args(argv)
    sources = list(args.sources)
    last: list[str] = []
    while True:
        if args.run_into and Path(args.run_into).is_dir() and args.run_into not in sources:
            sources.append(args.run_into)
        try:
            lines = plan_lines(args, sources)
        except (ReportError, ValueError, KeyError) as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        if not args.run_into or not lines:
            return 0
        if lines == last:  # the same runs again: they failed, and would fail forever
            print(f"{PROG}: error: the last round's runs are still needed (did they fail? see "
                  f"their summary.json under {args.run_into})", file=sys.stderr)  # fmt: skip
            return 1
        for line in lines:
            cmd = [sys.executable, "-m", "resnorm.cli", *shlex.split(line)[1:],
                   f"hydra.sweep.dir={args.run_into}"]  # fmt: skip
            print(f"{PROG}: running: {line} hydra.sweep.dir={args.run_into}", flush=True)
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, check=False).returncode
            if rc:
                return rc
        last = lines


def plan_lines(args: argparse.Namespace, sources: list[str]) -> list[str]:
    """Print the plan of ``args.study`` from ``sources``; return its `resnorm train` lines."""
    spec = study_spec(args.study)
    schedule = Schedule.of(spec.get("adaptive")) or Schedule()
    primary = [str(k) for k in spec.get("primary") or []]
    search = "frontier_bars" in spec
    if not primary and not search:
        raise ReportError(f"study {args.study!r} declares no primary claims (study.primary)")
    runs = pd.DataFrame(columns=["task", "arch", "depth", "lr", "seed", "status", "usable"])
    if sources:
        runs = load_sources([classify(s) for s in sources])[0].runs
    if search:
        params = dict(spec["params"])
        if args.task:
            params["task"] = ",".join(args.task)
        for item in args.only:
            key, sep, values = item.partition("=")
            if not sep or key not in params:
                raise ReportError(f"--only {item}: expected KEY=VALUES with KEY one of "
                                  f"{', '.join(params)}")  # fmt: skip
            params[key] = values
        return frontier_plan(args.study, params, runs)
    if args.only:
        raise ReportError("--only narrows the frontier study's sweep; use --task here")
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
    return lines


def frontier_plan(study: str, params: dict, runs: pd.DataFrame) -> list[str]:
    """Print each seed's LRs so far and next LR of the frontier search; return the lines."""
    for key in ("task", "variant", "model.depth", "optim.lr", "seed"):
        if key not in params:
            raise ReportError(f"study {study!r} sweeps no {key} (hydra.sweeper.params)")
    tasks = [t for t in str(params["task"]).split(",") if t]
    plans = frontier_search.plan(runs, params, configured_bars(tasks))
    print(f"study {study}: frontier search per seed on the LR grid {params['optim.lr']} "
          "(up by bisection, down one step at a time; docs/frontier.md)")  # fmt: skip
    for p in plans:
        ran = ", ".join(f"{lr:g} {'ok' if ok else 'fail'}" for lr, ok in sorted(p.tested.items()))
        nxt = f"lr {p.next_lr}" if p.next_lr else "none (bracketed)"
        print(f"  {p.task} {p.variant} d{p.depth} seed {p.seed}: {ran or 'nothing run'}; "
              f"next: {nxt}")  # fmt: skip
    done = sum(len(p.tested) for p in plans)
    todo = sum(p.next_lr is not None for p in plans)
    print(f"runs: {done} done, {todo} next; the whole grid: "
          f"{len(plans) * len(str(params['optim.lr']).split(','))}")  # fmt: skip
    lines = frontier_search.commands(plans, study)
    print("\n".join(lines) if lines else "nothing left to run: every seed is bracketed")
    return lines
