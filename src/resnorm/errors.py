"""Turning exceptions into the one clear line a user sees."""

from __future__ import annotations


def one_line_error(exc: BaseException) -> str:
    """The first line of the message, plus the allowed options when Hydra knows them."""
    text = str(exc).strip() or type(exc).__name__
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    first = first.removeprefix("In 'train': ")
    options = getattr(exc, "options", None)
    if options:
        first += f"; allowed: {', '.join(sorted(options))}"
    cause = exc.__cause__
    if cause is not None and "not in struct" in str(cause):
        first += f" ({str(cause).splitlines()[0]}; use +key=value to add a new key)"
    return first
