"""After a launcher has run its batch: the runs that other launchers still hold.

Launchers of one study divide its runs by claims (``resnorm.jobs.claims``): a job that
finds its run claimed leaves it. So when its batch is through, a launcher looks at each
such run again: a run with no claim left was ended by whoever held it; one whose claim is
live is waited for; one whose claim went stale (its launcher was killed, or its machine
stopped) is launched again here, takes the claim over and resumes from its checkpoint.
The launcher returns when no run of its batch is held any more, so any launcher of a
study that exits has seen the whole study end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from resnorm.jobs.claims import ClaimOptions, Holder, inspect

MAX_TAKEOVERS = 3  # per run and launcher: a run that keeps dying is left to the user


@dataclass(frozen=True)
class Pending:
    """A job of this launcher's batch, as it can be launched again."""

    num: int
    run_dir: str


def held(pending: Sequence[Pending], opts: ClaimOptions) -> list[tuple[Pending, Holder]]:
    """The jobs whose run is claimed right now, with the claim."""
    out = []
    for p in pending:
        holder = inspect(p.run_dir, opts)
        if holder is not None:
            out.append((p, holder))
    return out


def settle(
    pending: Sequence[Pending],
    opts: ClaimOptions,
    relaunch: Callable[[list[Pending]], None],
    *,
    wait: bool = True,
    poll_s: float | None = None,
) -> None:
    """Wait for the jobs other launchers hold and relaunch those whose claim went stale."""
    poll = poll_s if poll_s is not None else min(opts.heartbeat_s, 10.0)
    takeovers: dict[int, int] = {}
    announced: set[int] = set()
    todo = held(pending, opts)
    while todo:
        stale = [(p, h) for p, h in todo if h.stale]
        if stale:
            retry = []
            for p, h in stale:
                if takeovers.get(p.num, 0) >= MAX_TAKEOVERS:
                    print(f"resnorm: giving up after {MAX_TAKEOVERS} takeovers [{p.run_dir}]")
                    continue
                print(f"resnorm: taking over ({h.describe()}) [{p.run_dir}]", flush=True)
                takeovers[p.num] = takeovers.get(p.num, 0) + 1
                retry.append(p)
            gave_up = {p for p, _ in stale} - set(retry)
            if retry:
                relaunch(retry)
            todo = held([p for p, _ in todo if p not in gave_up], opts)
            continue
        if not wait:
            for p, h in todo:
                print(f"resnorm: left to another launcher ({h.describe()}) [{p.run_dir}]")
            return
        new = [(p, h) for p, h in todo if p.num not in announced]
        if new:
            owners = sorted({f"{h.host} pid {h.pid}" for _, h in new})
            print(f"resnorm: waiting for {len(new)} run(s) that other launchers hold "
                  f"({', '.join(owners)})", flush=True)  # fmt: skip
            announced.update(p.num for p, _ in new)
        time.sleep(poll)
        todo = held([p for p, _ in todo], opts)
