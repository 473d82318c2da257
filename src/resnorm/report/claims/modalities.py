"""Across modalities: one claim's verdicts on every task of a report, read as the question
this harness exists for — does it hold in language, vision and speech?"""

from __future__ import annotations

from collections.abc import Sequence

from resnorm.report.claims.finding import Finding
from resnorm.report.claims.verdicts import INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED

# the embedded tasks' modality; other tasks by their name's prefix, else their own name
MODALITY = {"image_digits": "vision", "nlp_charlm": "language", "nlp_listops": "language",
            "speech_synth": "speech"}  # fmt: skip
PREFIXES = (("nlp", "language"), ("text", "language"), ("image", "vision"),
            ("vision", "vision"), ("speech", "speech"), ("audio", "speech"))  # fmt: skip


def modality(task: str) -> str:
    if task in MODALITY:
        return MODALITY[task]
    return next((m for p, m in PREFIXES if task.startswith(p)), task)


def _names(findings: Sequence[Finding]) -> str:
    """'vision (image_digits)', one per modality, tasks joined."""
    by: dict[str, list[str]] = {}
    for f in findings:
        by.setdefault(modality(f.task), []).append(f.task)
    return ", ".join(f"{m} ({', '.join(sorted(ts))})" for m, ts in sorted(by.items()))


def across(findings: Sequence[Finding]) -> str:
    """One claim's verdict across the report's tasks: holds on all, on some (which), on
    none, or untestable; tasks still inconclusive are named, never counted as either."""
    holds = [f for f in findings if f.verdict == SUPPORTED]
    fails = [f for f in findings if f.verdict == NOT_SUPPORTED]
    open_ = [f for f in findings if f.verdict == INCONCLUSIVE]
    if not holds and not fails:
        if findings and all(f.verdict == NOT_TESTABLE for f in findings):
            return "untestable"
        return f"undecided: inconclusive on {_names(open_)}" if open_ else "untestable"
    if holds and not fails and not open_ and len(holds) == len(findings):
        return f"holds on all: {_names(holds)}"
    parts = [f"holds on {_names(holds)}" if holds else "holds on none"]
    if fails:
        parts.append(f"not on {_names(fails)}")
    if open_:
        parts.append(f"open on {_names(open_)}")
    return ("holds on some: " if holds else "") + "; ".join(parts)
