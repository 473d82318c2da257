"""``resnorm export STUDY_DIR --out FILE`` and ``resnorm import FILE --into STUDY_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resnorm.results.archive import SUFFIX, ExportError


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="resnorm export",
        description="Write a study's results (every ended run's summary, per-step metrics and "
        "probe records; no checkpoints) to one file that `resnorm report` reads and "
        "`resnorm import` seeds a study directory from.",
    )
    parser.add_argument("study_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help=f"e.g. results/NAME{SUFFIX}")
    args = parser.parse_args(argv)
    from resnorm.results.export import export_study

    try:
        n, left_out = export_study(args.study_dir, args.out)
    except (ExportError, OSError) as exc:
        print(f"resnorm: error: export: {exc}", file=sys.stderr)
        return 2
    size = args.out.stat().st_size
    print(f"resnorm: export: {n} runs from {args.study_dir} -> {args.out} ({size / 1e6:.2f} MB)")
    if left_out:
        shown = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
        print(f"resnorm: export: left out {len(left_out)} runs that have not ended: {shown}")
    return 0


def import_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="resnorm import",
        description="Seed a study directory from an export: relaunching the study there "
        "skips every run the export holds and runs only the rest. Runs already in the "
        "directory are kept as they are.",
    )
    parser.add_argument("export", type=Path)
    parser.add_argument("--into", type=Path, required=True, help="the study's sweep directory")
    args = parser.parse_args(argv)
    from resnorm.results.seed import seed_study

    try:
        written, kept = seed_study(args.export, args.into)
    except (ExportError, OSError) as exc:
        print(f"resnorm: error: import: {exc}", file=sys.stderr)
        return 2
    print(
        f"resnorm: import: {written} runs from {args.export} -> {args.into}"
        + (f"; {kept} already there, kept as they were" if kept else "")
    )
    return 0
