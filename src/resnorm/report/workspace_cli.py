"""``resnorm workspace push <spec.json>``: save a W&B workspace spec that ``resnorm report
--wandb-workspace`` wrote while W&B could not be reached.

Exit status: 0 saved; 1 W&B cannot be reached or refused it (one line on stderr, within a
few seconds when offline); 2 bad arguments or a file that is not a workspace spec.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from resnorm.errors import one_line_error
from resnorm.report.render.workspace import SPEC_FILE, push
from resnorm.report.sources.classify import ReportError

PROG = "resnorm workspace"


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as `resnorm report` answers
        print(f"{PROG}: error: {message} (see `{PROG} --help`)", file=sys.stderr)
        raise SystemExit(2)


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="W&B workspaces that `resnorm report` built.")
    verbs = p.add_subparsers(dest="verb", required=True, parser_class=OneLineParser)
    push_p = verbs.add_parser("push", help=f"save a saved spec ({SPEC_FILE}) to W&B")
    push_p.add_argument("spec", type=Path, help=f"the spec file (a report folder's {SPEC_FILE})")
    push_p.add_argument(
        "--project",
        default=None,
        metavar="[ENTITY/]PROJECT",
        help="where to save it (default: the spec's own, entity from $WANDB_ENTITY if unset)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    spec = args.spec / SPEC_FILE if args.spec.is_dir() else args.spec
    if not spec.is_file():
        print(f"{PROG}: error: {spec}: no such file", file=sys.stderr)
        return 2
    try:
        url = push(spec, args.project)
    except ReportError as exc:
        bad_file = str(exc).startswith(f"{spec}: not a workspace spec")
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2 if bad_file else 1
    except Exception as exc:
        if os.environ.get("RESNORM_DEBUG"):
            raise
        print(f"{PROG}: error: {type(exc).__name__}: {one_line_error(exc)}", file=sys.stderr)
        return 1
    print(f"{PROG}: saved {spec}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
