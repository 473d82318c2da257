"""A W&B project as a report source, through the public API (``wandb.Api``).

Never hangs: offline mode, a missing API key or an unreachable host is one clear error
within a few seconds (a bounded connection probe runs before the API is touched, and the
API itself gets a short timeout). Per-layer arrays and CSV curves are not in W&B
summaries, so figures that need them stay empty for W&B-only reports.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from resnorm.outputs import COMPLETED, FAILED, RUNNING
from resnorm.report.sources.classify import ReportError
from resnorm.report.sources.rows import summary_row
from resnorm.variants import variant_overrides

PROBE_TIMEOUT_S = 5.0
API_TIMEOUT_S = 20
OFFLINE_MODES = ("offline", "disabled", "dryrun")
STATE_STATUS = {
    "finished": COMPLETED,
    "running": RUNNING,
    "crashed": FAILED,
    "failed": FAILED,
    "killed": FAILED,
}


def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None if a TCP connection to the API host opens in time, else why not."""
    parsed = urlparse(url)
    host, port = (
        parsed.hostname or "api.wandb.ai",
        parsed.port or (443 if parsed.scheme != "http" else 80),
    )
    result: list[str | None] = ["timed out"]

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result[0] = None
        except OSError as exc:
            result[0] = f"{type(exc).__name__}: {exc}"

    t = threading.Thread(target=probe, daemon=True)  # DNS itself may block: bound it too
    t.start()
    t.join(timeout + 0.5)
    return result[0]


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text() or "wandb" in netrc.read_text()
    except OSError:
        return False


def check_online(project: str, purpose: str = "reading a W&B project") -> str:
    """The API base URL, or a ReportError saying in one line why W&B cannot be used."""
    instead = "; pass the run directories instead" if purpose.startswith("reading") else ""
    mode = os.environ.get("WANDB_MODE", "")
    if mode in OFFLINE_MODES:
        raise ReportError(
            f"W&B {project!r}: WANDB_MODE={mode}, and {purpose} needs the W&B API online{instead}"
        )
    if not has_api_key():
        raise ReportError(
            f"W&B {project!r}: no API key (run `wandb login` or set WANDB_API_KEY){instead}"
        )
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    why = reachable(base)
    if why is not None:
        raise ReportError(f"W&B {project!r}: cannot reach {base} ({why}); offline?{instead}")
    return base


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{'model.depth': 4} -> {'model': {'depth': 4}} (the config shape summaries carry)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = str(key).split(".")
        for p in parents:
            node = node.setdefault(p, {}) if isinstance(node.get(p, {}), dict) else {}
        node[leaf] = value
    return out


def run_row(run: Any, project: str) -> dict[str, Any]:
    """One report row from a W&B run's config and summary."""
    config = _nest({k: v for k, v in dict(run.config).items() if not str(k).startswith("_")})
    summary = {k: v for k, v in dict(run.summary).items() if not str(k).startswith("_")}
    model, optim = config.get("model") or {}, config.get("optim") or {}
    status = summary.get("status") or STATE_STATUS.get(run.state, FAILED)
    if run.state == "running":
        status = RUNNING
    s = {
        "status": status,
        # a run that resnorm logged records its config's run key; others are keyed by id
        "run_key": summary.get("run_key") or run.id,
        "task": (config.get("task") or {}).get("name"),
        "variant": model.get("variant"),
        # the logged config is the whole model config: what the run overrode, as a summary says
        "variant_overrides": variant_overrides(model, model.get("variant")),
        "seed": config.get("seed"),
        "lr": optim.get("lr"),
        "warmup_steps": optim.get("warmup_steps"),
        "config": config,
        "metrics": {k: v for k, v in summary.items() if k.startswith(("test/", "val_best/"))},
        "stability": {
            k.removeprefix("stability/"): v
            for k, v in summary.items()
            if k.startswith("stability/")
        },
        "diverged_at_step": summary.get("diverged_at_step"),
        "steps": summary.get("trainer/global_step") or summary.get("_step"),
        "wall_s": summary.get("_runtime"),
    }
    s["stability"].pop("diverged_at_step", None)
    return summary_row(s, f"wandb:{project}/{run.id}", f"wandb:{project}")


def load_project(project: str) -> list[dict[str, Any]]:
    """Rows of every run of ``entity/project`` (or ``project`` under the default entity)."""
    check_online(project)
    import wandb  # lazy: seconds to import, paid only by reports of a W&B project

    try:
        api = wandb.Api(timeout=API_TIMEOUT_S)
        runs = list(api.runs(project, per_page=500))
    except Exception as exc:  # auth, unknown project, timeouts: all one line for the user
        raise ReportError(
            f"W&B source {project!r}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if not runs:
        raise ReportError(f"W&B project {project!r} has no runs")
    return [run_row(r, project) for r in runs]
