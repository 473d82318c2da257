"""The export format: gzip-compressed JSON lines. The first line is a header, every other
line one run: its path below the study directory and the text of the files the report
reads (and a relaunch needs to skip it). JSON lines, not Parquet: the records are nested
texts, the standard library reads them, and gzip makes the CSV logs small.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from resnorm.outputs import METRICS_CSV, STABILITY, SUMMARY

FORMAT, VERSION = "resnorm-export", 1
SUFFIX = ".jsonl.gz"
# what a run directory holds that its results are made of; checkpoints, logs and tracker
# folders stay behind (the report does not read them; a relaunch does not need them)
RUN_FILES = (SUMMARY, STABILITY, METRICS_CSV, ".hydra/config.yaml", ".hydra/overrides.yaml")


class ExportError(Exception):
    """A problem with an export file or its destination; the CLI prints it as one line."""


@dataclass(frozen=True)
class RunRecord:
    path: str  # below the study directory, '/'-separated; '.' for a study of one run
    files: dict[str, str]  # RUN_FILES name -> text, for those the run has


def safe_path(text: str) -> PurePosixPath:
    """A record's path, refused when it could leave the study directory."""
    p = PurePosixPath(text)
    if p.is_absolute() or ".." in p.parts or "\\" in text:
        raise ExportError(f"export record path {text!r} leaves the study directory")
    return p


def write_archive(out: Path, header: dict[str, Any], records: Iterable[RunRecord]) -> int:
    """Write the header and records to ``out`` (via a temp file, so a failed write leaves
    no half file); returns the number of runs. mtime 0: the same runs give the same bytes."""
    tmp = out.with_name(f".{out.name}.tmp")
    n = 0
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as gz:
            gz.write((json.dumps({"format": FORMAT, "version": VERSION, **header}) + "\n").encode())
            for r in records:
                gz.write((json.dumps({"path": r.path, "files": r.files}) + "\n").encode())
                n += 1
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def read_header(path: Path) -> dict[str, Any]:
    """The header line, checked: an export of this format and a version this code reads."""
    try:
        with gzip.open(path, "rt") as f:
            header = json.loads(f.readline() or "null")
    except (OSError, EOFError, ValueError) as exc:
        raise ExportError(f"{path}: not a resnorm export ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ExportError(f"{path}: not a resnorm export (no '{FORMAT}' header)")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise ExportError(
            f"{path}: export version {header.get('version')!r} is newer than this resnorm "
            f"reads (<= {VERSION}); upgrade resnorm"
        )
    return header


def read_records(path: Path) -> Iterator[RunRecord]:
    """Every run of an export, in file order (header checked first)."""
    read_header(path)
    try:
        with gzip.open(path, "rt") as f:
            f.readline()
            for i, line in enumerate(f, start=2):
                try:
                    data = json.loads(line)
                    files = {str(k): str(v) for k, v in data["files"].items()}
                    record = RunRecord(str(safe_path(data["path"])), files)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise ExportError(f"{path}: line {i} is not a run record ({exc})") from exc
                if SUMMARY not in record.files:
                    raise ExportError(f"{path}: line {i} ({record.path}) has no {SUMMARY}")
                yield record
    except (OSError, EOFError) as exc:  # a truncated or corrupt gzip stream
        raise ExportError(f"{path}: unreadable export ({exc})") from exc
