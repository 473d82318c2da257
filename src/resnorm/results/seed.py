"""``resnorm import``: seed a study directory from an export, so that relaunching the study
there skips every run the export holds (the sweeper finds each run's summary in the job
directory its overrides name) and runs only the rest."""

from __future__ import annotations

from pathlib import Path

from resnorm.outputs import SUMMARY, atomic_file
from resnorm.results.archive import read_records


def seed_study(export: Path, study_dir: Path) -> tuple[int, int]:
    """Write each exported run below ``study_dir``; returns (written, kept).

    A run directory that already has a summary is kept as it is (never overwritten: it may
    hold newer results). Each run's summary is written last, so a seeding that stops
    half-way leaves runs without a summary, which a relaunch simply runs.
    """
    written = kept = 0
    for record in read_records(export):
        run = study_dir / record.path
        if (run / SUMMARY).exists():
            kept += 1
            continue
        names = sorted(record.files, key=lambda n: n == SUMMARY)  # the summary last
        for name in names:
            dest = run / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(dest, newline="") as f:
                f.write(record.files[name])
        written += 1
    return written, kept
