"""Turning exceptions into the one clear line a user sees."""

from __future__ import annotations

import difflib
import re


def did_you_mean(word: str, choices: list[str]) -> str:
    """'; did you mean X?' for a near miss, else ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def one_line_error(exc: BaseException) -> str:
    """The first line of the message, plus the allowed options when Hydra knows them."""
    text = str(exc).strip() or type(exc).__name__
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    first = first.removeprefix("In 'train': ")
    options = getattr(exc, "options", None)
    if options:
        missing = re.search(r"Could not find '[^/']*/?([^']*)'", first)
        first += f"; allowed: {', '.join(sorted(options))}"
        if missing:
            first += did_you_mean(missing.group(1), list(options))
    cause = exc.__cause__
    if cause is not None and "not in struct" in str(cause):
        first += f" ({str(cause).splitlines()[0]}; use +key=value to add a new key"
        parent, key = getattr(cause, "parent_node", None), getattr(cause, "key", None)
        if parent is not None and key is not None:
            first += did_you_mean(key, list(parent.keys()))
        first += ")"
    return first
