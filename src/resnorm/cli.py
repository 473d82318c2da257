"""The ``resnorm`` command. Imports lazily: ``resnorm --help`` never loads Lightning."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from resnorm.bench import BENCHES
from resnorm.errors import one_line_error
from resnorm.omp import record_wait_policy

USAGE = """resnorm <command> [args]

commands:
  train [-m] [overrides...]   train one config, or a multirun sweep with -m (Hydra syntax)
                              e.g. resnorm train task=image_digits variant=post_ln model.depth=8
  resume <dir> [overrides...] resume a stopped run (or study) in its own directory
  report <dirs...> [--out D]  build a comparison report from run or sweep directories
                              (or exports, results/NAME.jsonl.gz)
  export <dir> --out FILE     write a study's results to one compact file (no checkpoints)
  import FILE --into <dir>    seed a study directory from an export (a relaunch skips its runs)
  plan [sources...] --study S which runs an adaptive study needs next, and why
  workspace push <spec.json>  save a W&B workspace spec `report --wandb-workspace` wrote offline
  bench {{{benches}}}
                              performance benchmarks (ratios measured side by side)
  probe xiong [--out D]       Xiong et al. 2020's W² gradients at init, in their setting

Run `resnorm train --help` for Hydra's help (config groups and their options).
Set RESNORM_DEBUG=1 to see full tracebacks instead of one-line errors.""".format(
    benches=",".join(BENCHES)
)


def train(argv: list[str]) -> int:
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let exceptions reach us; we print one line
    # The process's program is the Hydra app itself, so that Lightning's DDP launcher,
    # which re-executes the program for every extra rank, starts the app again.
    import importlib.util

    import __main__

    spec = importlib.util.find_spec("resnorm.training.app")
    sys.argv = [spec.origin, *argv]
    if getattr(__main__, "__spec__", None) is not None:  # started as `python -m resnorm.cli`
        __main__.__spec__ = spec
    from resnorm.training.no_matplotlib import keep_matplotlib_out

    keep_matplotlib_out()  # before Lightning loads torchmetrics
    from resnorm.training.app import FAILURES, main

    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except Exception as exc:  # config composition errors, before any job starts
        if os.environ.get("RESNORM_DEBUG"):
            raise
        print(f"resnorm: error: {one_line_error(exc)}", file=sys.stderr)
        return 2
    return 1 if FAILURES else 0


def resume(argv: list[str]) -> int:
    """Relaunch a stopped run (or study) with its own overrides into its own directory."""
    from resnorm.training.resume_cli import ResumeRefused, resume_args  # no torch

    try:
        args = resume_args(argv)
    except ResumeRefused as exc:
        print(f"resnorm: error: resume: {exc}", file=sys.stderr)
        return 2
    print(f"resnorm: resume: resnorm train {shlex.join(args)}", flush=True)
    record_wait_policy()  # before torch loads, as for `resnorm train`
    return train(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in ("train", "bench", "probe"):
        # before torch loads; the choice goes to each run's summary.json and log, not stderr
        record_wait_policy()
    if command == "train":
        return train(rest)
    if command == "resume":
        return resume(rest)
    if command == "bench":
        from resnorm.bench.cli import main as bench_main

        return bench_main(rest)
    if command == "report":
        from resnorm.report.cli import main as report_main

        return report_main(rest)
    if command == "probe":
        from resnorm.probes.cli import main as probe_main

        return probe_main(rest)
    if command in ("export", "import"):
        from resnorm.results.cli import export_main, import_main

        return (export_main if command == "export" else import_main)(rest)
    if command == "plan":
        from resnorm.report.plan_cli import main as plan_main

        return plan_main(rest)
    if command == "workspace":
        from resnorm.report.workspace_cli import main as workspace_main

        return workspace_main(rest)
    parser = argparse.ArgumentParser(prog="resnorm", usage=USAGE)
    parser.error(
        f"unknown command {command!r}; allowed: train, resume, report, export, import, plan, "
        "bench, probe, workspace"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
