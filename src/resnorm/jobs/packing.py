"""Which runs may train together as one pack, and how a multirun's jobs are grouped.

A pack trains k runs in one process with parameters stacked along a member dimension, so
its members must agree on everything that shapes the parameters, the data and the loop;
they may differ only in ``MEMBER_KEYS`` (``resnorm.member_config``: what a member sets on
its own and trains with). Torch-free: the sweeper (which groups jobs) and
``training.run.run_pack`` (which checks them) both use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from resnorm.jobs.resume import previous_status, should_skip
from resnorm.member_config import MEMBER_KEYS
from resnorm.outputs import run_key, write_json_atomic

T = TypeVar("T")

PACKS_DIR = ".packs"  # <sweep dir>/.packs/<pack id>.json: manifests; <pack id>/: the pack job
MANIFEST_SCHEMA = 1
_PLAIN = re.compile(r"^[\w\-./]+$")


def check_pack_size(value: Any) -> None:
    """``pack`` is the most members a pack may have: a positive integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"pack={value!r} must be a positive integer (1: one run per job)")


def _leaves(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to ``{dotted.path: value}``, leaving out the member keys."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        path = f"{prefix}{k}"
        if path in MEMBER_KEYS:
            continue
        if isinstance(v, dict) and v:
            out.update(_leaves(v, f"{path}."))
        else:
            out[path] = v
    return out


def pack_key(container: dict[str, Any]) -> str:
    """Hash of a resolved config without the member keys: equal keys may share a pack."""
    blob = json.dumps(_leaves(container), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def group(items: Sequence[T], key: Callable[[T], Hashable], size: int) -> list[list[T]]:
    """Packs of at most ``size`` items of one key, in job order.

    Each item joins the open pack of its key; a full pack closes. Packs are listed by their
    first item, so with ``size=1`` this is the items themselves, one per pack.
    """
    check_pack_size(size)
    packs: list[list[T]] = []
    open_pack: dict[Hashable, list[T]] = {}
    for item in items:
        k = key(item)
        members = open_pack.get(k)
        if members is None:
            members = open_pack[k] = []
            packs.append(members)
        members.append(item)
        if len(members) == size:
            del open_pack[k]
    return packs


def check_compatible(containers: Sequence[dict[str, Any]]) -> None:
    """Raise ValueError naming the first config path on which a member differs from the
    first member (outside ``MEMBER_KEYS``): such runs cannot share parameter shapes or data."""
    if len(containers) < 2:
        return
    first = _leaves(containers[0])
    for i, other in enumerate(containers[1:], start=1):
        leaves = _leaves(other)
        for path in [*first, *(p for p in leaves if p not in first)]:
            a, b = first.get(path, "<unset>"), leaves.get(path, "<unset>")
            if a != b:
                raise ValueError(
                    f"pack members 0 and {i} differ in {path} ({a!r} vs {b!r}); only "
                    "seed, optimizer settings, dropout and stability thresholds may differ "
                    "inside a pack (resnorm.member_config.MEMBER_KEYS)"
                )


def done_before(config: dict[str, Any], run_dir: str | os.PathLike[str]) -> str | None:
    """The status a run's directory already holds when the run is to be skipped (finished,
    or failed without ``study.rerun_failed``), else None: the rule of a job run alone."""
    status = previous_status(run_dir, run_key(config))
    rerun_failed = bool((config.get("study") or {}).get("rerun_failed", False))
    return status if should_skip(status, rerun_failed) else None


# ---- manifests: what the sweeper tells a pack job -------------------------------------
def pack_id(members: Sequence[tuple[str, str]]) -> str:
    """Id of a pack from its members' (run dir, run key): a relaunch that forms the same
    pack of the same unfinished runs finds the same id, and with it the pack's checkpoint."""
    blob = json.dumps([list(m) for m in members], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def manifest_member(
    job_num: int,
    overrides: Sequence[str],
    run_dir: str,
    config: dict[str, Any],
    hydra_files: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One member: its job number and task overrides, run directory, resolved config (what
    it trains) and the text of the ``.hydra/*.yaml`` files its job alone would write."""
    return {
        "job_num": job_num,
        "overrides": list(overrides),
        "run_dir": str(run_dir),
        "config": config,
        "hydra_files": dict(hydra_files or {}),
    }


def write_manifest(sweep_dir: str | os.PathLike[str], pid: str, members: list[dict]) -> Path:
    path = Path(sweep_dir) / PACKS_DIR / f"{pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"schema": MANIFEST_SCHEMA, "pack_id": pid, "sweep_dir": str(sweep_dir)}
    write_json_atomic(path, {**data, "members": members})
    return path


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"pack_manifest={str(path)!r} cannot be read: {exc}") from exc
    if data.get("schema") != MANIFEST_SCHEMA or not data.get("members"):
        raise ValueError(f"pack_manifest={str(path)!r} is not a pack manifest of this resnorm")
    return data


def _quote(text: str) -> str:
    """A string as Hydra override text that reads back unchanged."""
    if _PLAIN.match(text):
        return text
    # Hydra reads backslashes literally except in runs that end at a quote (or the end)
    text = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, text)
    return "'" + text.replace("'", "\\'") + "'"


def pack_overrides(first: Sequence[str], manifest: str | os.PathLike[str], pid: str) -> list[str]:
    """The launcher overrides of a pack job: its first member's, pointed at the manifest,
    with the job's own Hydra directory at ``<sweep dir>/.packs/<pack id>``."""
    keep = [o for o in first if not o.startswith(("hydra.sweep.subdir=", "+pack_manifest="))]
    return [
        *keep,
        f"+pack_manifest={_quote(str(manifest))}",
        f"hydra.sweep.subdir={_quote(f'{PACKS_DIR}/{pid}')}",
    ]
