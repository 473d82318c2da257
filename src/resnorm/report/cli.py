"""``resnorm report``: sources in, a report folder out.

Exit status: 0 written; 1 written, but some summary.json files could not be read (each is
named on stderr and in the report, and skipped); 2 nothing written: bad arguments, no
runs, a summary from a newer schema, an unknown or unreachable source. With ``--baseline``
the exit status is the same whatever changed: the summary line's counts say that.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from resnorm.errors import one_line_error
from resnorm.report.sources.classify import ReportError, classify

PROG = "resnorm report"


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + message; we print one line
        print(f"{PROG}: error: {message} (see `{PROG} --help`)", file=sys.stderr)
        raise SystemExit(2)


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Build a comparison report (index.html, report.md, figures, runs.csv) from "
        "run or sweep directories, an Optuna storage, or a W&B project.",
    )
    p.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="run or sweep directory | Optuna storage (sqlite:///x.db, x.db, "
        "postgresql://...) | W&B project (wandb:ENTITY/PROJECT)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="report folder (default: reports/<title slug>)"
    )
    p.add_argument("--title", default="resnorm report")
    p.add_argument(
        "--baseline",
        nargs="+",
        default=[],
        metavar="OLD",
        help="sources of a before/after comparison (after the SOURCEs): runs of the same "
        "config (run key) are matched and their changes reported in a 'Before/after' "
        "section and one summary line; the rest of the report is the SOURCEs alone",
    )
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="TASK=VALUE",
        help="validation score that counts as 'trained' for steps-to-target",
    )
    p.add_argument(
        "--primary",
        default=None,
        metavar="KEYS",
        help="the study's primary claims, e.g. b,c,i: only their parts form the Holm family, "
        "the others are reported as exploratory (default: the claims the runs' study preset "
        "declares as study.primary, else every claim)",
    )
    p.add_argument(
        "--wandb-workspace",
        action="store_true",
        help="also build a W&B workspace (saved when online, else written as "
        "wandb_workspace.json into the report folder)",
    )
    p.add_argument(
        "--wandb-project",
        default=None,
        metavar="[ENTITY/]PROJECT",
        help="project of the workspace (default: the W&B source, else $WANDB_ENTITY/resnorm)",
    )
    return p


def parse_targets(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        task, sep, value = item.partition("=")
        try:
            out[task] = float(value)
        except ValueError:
            sep = ""
        if not sep or not task:
            raise ReportError(f"--target {item!r}: expected TASK=NUMBER, e.g. image_digits=0.8")
    return out


def parse_primary(text: str | None) -> list[str] | None:
    """--primary b,c,i -> ["b", "c", "i"]; each key must name a claim."""
    if text is None:
        return None
    from resnorm.report.claims.registry import CLAIMS

    keys = [k.strip().strip("()") for k in text.split(",") if k.strip()]
    known = {c.key for c in CLAIMS}
    unknown = [k for k in keys if k not in known]
    if unknown or not keys:
        among = ",".join(sorted(known))
        raise ReportError(f"--primary {text!r}: expected claim keys among {among}")
    return keys


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "report"


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    sources = [classify(s) for s in args.sources]
    baseline = [classify(s) for s in args.baseline]
    targets = parse_targets(args.target)
    out: Path = args.out or Path("reports") / slug(args.title)
    # lazy: pandas, numpy and matplotlib load here, so that `--help` and argument errors
    # answer at once
    from resnorm.report.build import build, write_runs_csv
    from resnorm.report.render import html, markdown
    from resnorm.report.render.workspace import publish

    primary = parse_primary(args.primary)
    data = build(sources, out, args.title, targets, baseline, primary)
    skipped = data.skipped + (data.baseline.skipped if data.baseline is not None else [])
    for s in skipped:
        print(f"{PROG}: warning: skipped {s}", file=sys.stderr)
    if args.wandb_workspace:
        data.workspace = publish(data, sources, out, args.wandb_project)
    write_runs_csv(data.runs, out)
    markdown.write(data, out)
    index = html.write(data, out)
    verdicts = [f.verdict for f in data.findings]
    print(
        f"{PROG}: wrote {index} ({len(data.runs)} runs, {len(data.figs)} figures, "
        f"{len(verdicts)} findings: {verdicts.count('supported')} supported, "
        f"{verdicts.count('not supported')} not supported, "
        f"{verdicts.count('inconclusive')} inconclusive, "
        f"{verdicts.count('not testable')} not testable) in {time.perf_counter() - t0:.1f}s"
    )
    if data.baseline is not None:  # exit 0 either way: the counts say what moved
        print(f"{PROG}: {data.baseline.summary_line()}")
    return 1 if skipped else 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except ReportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if os.environ.get("RESNORM_DEBUG"):
            raise
        print(f"{PROG}: error: {type(exc).__name__}: {one_line_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
