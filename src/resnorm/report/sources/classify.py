"""What a ``resnorm report`` argument names: run/sweep directories, an Optuna storage, or a
W&B project. Decided from the text alone, so a bad argument fails before anything is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STORAGE_SCHEMES = (
    "sqlite://",
    "postgresql://",
    "postgresql+",
    "mysql://",
    "mysql+",
    "journal:",
    "redis://",
)
STORAGE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
EXPORT_SUFFIX = ".jsonl.gz"  # results.archive.SUFFIX: `resnorm export` files
WANDB_PREFIXES = ("wandb:", "wandb://", "https://wandb.ai/", "http://wandb.ai/")


class ReportError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits non-zero."""


@dataclass(frozen=True)
class Source:
    kind: str  # "dir" | "export" | "optuna" | "wandb"
    # a directory, an export file, a storage URL, or "entity/project" ("project" alone allowed)
    value: str
    text: str  # as the user typed it


def classify(text: str) -> Source:
    """Map one command-line source to its kind; unknown text is a ReportError."""
    for prefix in WANDB_PREFIXES:
        if text.startswith(prefix):
            project = text[len(prefix) :].strip("/")
            if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", project):
                raise ReportError(
                    f"W&B source {text!r}: expected wandb:ENTITY/PROJECT or wandb:PROJECT"
                )
            return Source("wandb", project, text)
    if text.startswith(STORAGE_SCHEMES):
        return Source("optuna", text, text)
    path = Path(text)
    if path.is_file() and path.suffix in STORAGE_SUFFIXES:
        return Source("optuna", f"sqlite:///{path.resolve()}", text)
    if path.is_dir():
        return Source("dir", str(path), text)
    if path.is_file() and path.name.endswith(EXPORT_SUFFIX):
        return Source("export", str(path), text)
    if path.exists():
        raise ReportError(
            f"source {text!r} is a file; expected a run or sweep directory, an export "
            f"(*{EXPORT_SUFFIX}), an Optuna storage "
            f"(sqlite:///study.db, *.db, postgresql://...) or a W&B project (wandb:ENTITY/PROJECT)"
        )
    raise ReportError(
        f"unknown source {text!r}: no such directory or export file, and not an Optuna storage URL "
        f"(sqlite:///..., postgresql://..., journal:FILE) or a W&B project (wandb:ENTITY/PROJECT)"
    )
