"""A W&B workspace for a study, built with ``wandb-workspaces``: headline metrics and
stability scalars, every panel grouped by variant.

Online (API key and a reachable host) it is saved to the project; either way its spec is
written to ``wandb_workspace.json`` in the report folder, so it can be reviewed, diffed and
saved later with ``resnorm workspace push <spec>`` (``Workspace`` round-trips through
pydantic).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from resnorm.errors import one_line_error
from resnorm.report.sources.classify import ReportError, Source
from resnorm.report.sources.wandb_project import check_online

SPEC_FILE = "wandb_workspace.json"
PUSH_COMMAND = "resnorm workspace push"  # resnorm.report.workspace_cli
GROUP_KEY = "model.variant"  # runs log their config flat (training/builders.flat_config)
STABILITY_LINES = (
    "stability/grad_norm",
    "stability/grad_norm_max",
    "stability/loss_smoothed",
    "stability/spike_count",
)
PER_LAYER = (
    "stability/token_cosine/.*",
    "stability/grad_norm_ffn/.*",
    "stability/attn_max_logit/.*",
)


def headline_metrics(data: Any) -> list[str]:
    seen = [m for m in ("test/acc", "test/bpc") if m in set(data.runs.get("metric", []))]
    return seen or ["test/acc", "test/bpc"]


def build_workspace(entity: str, project: str, title: str, metrics: list[str]) -> Any:
    """The Workspace object (not saved)."""
    # lazy: wandb_workspaces (and pydantic below) load only for --wandb-workspace
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    def by_variant(**kw: Any) -> dict[str, Any]:
        return {"groupby": wr.Config(GROUP_KEY), **kw}

    headline = [
        wr.ScalarChart(
            title=f"{m} by variant", metric=m, groupby_aggfunc="mean", groupby_rangefunc="stderr"
        )
        for m in metrics
    ]
    headline += [
        wr.LinePlot(
            title=f"{m.replace('test/', 'val/')} by variant",
            y=[m.replace("test/", "val/")],
            **by_variant(groupby_aggfunc="mean", groupby_rangefunc="stderr"),
        )
        for m in metrics
    ]
    headline += [
        wr.LinePlot(
            title=f"{m} by variant",
            y=[m],
            **by_variant(groupby_aggfunc="mean", groupby_rangefunc="minmax"),
        )
        for m in ("train/loss", "train/lr")  # the LR each step used: warmup and schedule
    ]
    stability = [
        wr.LinePlot(
            title=f"{m} by variant",
            y=[m],
            **by_variant(groupby_aggfunc="mean", groupby_rangefunc="minmax"),
        )
        for m in STABILITY_LINES
    ]
    stability.append(
        wr.ScalarChart(
            title="divergence step",
            metric="diverged_at_step",
            groupby_aggfunc="mean",
            groupby_rangefunc="minmax",
        )
    )
    layers = [
        wr.LinePlot(title=rx.split("/")[1] + " per layer", metric_regex=rx) for rx in PER_LAYER
    ]
    return ws.Workspace(
        entity=entity,
        project=project,
        name=title[:120],
        sections=[
            ws.Section(name="Headline metrics (grouped by variant)", panels=headline, is_open=True),
            ws.Section(name="Stability (grouped by variant)", panels=stability, is_open=True),
            ws.Section(name="Per-layer probes", panels=layers),
        ],
        runset_settings=ws.RunsetSettings(groupby=[ws.Config(GROUP_KEY)]),
    )


def spec(workspace: Any) -> dict[str, Any]:
    """The workspace as JSON-able data (pydantic's dump of the public Workspace model)."""
    import pydantic  # lazy: see build_workspace
    import wandb_workspaces.workspaces as ws

    return pydantic.TypeAdapter(ws.Workspace).dump_python(workspace, mode="json")


def view(workspace: Any) -> dict[str, Any] | None:
    """The view W&B stores when the workspace is saved (``Workspace._from_model`` reads it
    back); None if this wandb-workspaces version cannot build it offline."""
    try:
        return workspace._to_model().model_dump(mode="json", by_alias=True)
    except Exception:
        return None


def target(sources: list[Source], project_arg: str | None) -> tuple[str, str]:
    """(entity, project): --wandb-project, else the W&B source, else $WANDB_ENTITY/resnorm."""
    text = project_arg or next((s.value for s in sources if s.kind == "wandb"), None) or "resnorm"
    entity, _, project = text.rpartition("/")
    entity = entity or os.environ.get("WANDB_ENTITY", "")
    return entity, project


def publish(data: Any, sources: list[Source], out: Path, project_arg: str | None) -> str:
    """Write the spec; save the workspace too when W&B is reachable. Returns where it went."""
    entity, project = target(sources, project_arg)
    w = build_workspace(entity or "ENTITY", project, data.title, headline_metrics(data))
    path = out / SPEC_FILE
    path.write_text(
        json.dumps(
            {
                "entity": entity or None,
                "project": project,
                "group_by": GROUP_KEY,
                "workspace": spec(w),
                "view": view(w),
            },
            indent=1,
        )
    )
    try:
        check_online(f"{entity}/{project}" if entity else project, "saving the workspace")
        if not entity:
            raise ReportError("no entity; set WANDB_ENTITY or --wandb-project E/P")
        saved = w.save()
    except Exception as exc:
        why = one_line_error(exc)
        why = why if isinstance(exc, ReportError) else f"{type(exc).__name__}: {why}"
        # on the terminal too, not only inside report.md: where the spec is, how to push it
        print(f"resnorm report: W&B workspace not saved ({why}); spec in {path}; "
              f"push it later: {PUSH_COMMAND} {path}", file=sys.stderr)  # fmt: skip
        return f"{path} (not saved to W&B: {why}; push it later: {PUSH_COMMAND} {path})"
    return f"{getattr(saved, 'url', '') or 'saved'}; spec {path}"


def push(path: Path, project_arg: str | None = None) -> str:
    """Save the workspace of a spec file (``publish`` wrote it) to W&B; return its URL.

    ``project_arg`` ([ENTITY/]PROJECT) overrides the spec's target. A ReportError says in
    one line why it cannot be saved; offline, that takes at most check_online's few seconds.
    """
    try:
        data = json.loads(Path(path).read_text())
        workspace = data["workspace"]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        why = f"no key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise ReportError(
            f"{path}: not a workspace spec written by `resnorm report` ({why})"
        ) from exc
    entity, project = data.get("entity"), data.get("project") or workspace.get("project")
    if project_arg:
        given, _, project = project_arg.rpartition("/")
        entity = given or entity
    entity = entity or os.environ.get("WANDB_ENTITY")
    if not entity:
        raise ReportError(f"{path}: no entity; set WANDB_ENTITY or --project ENTITY/PROJECT")
    check_online(f"{entity}/{project}", "saving the workspace")
    import pydantic  # lazy, as in build_workspace
    import wandb_workspaces.workspaces as ws

    w = pydantic.TypeAdapter(ws.Workspace).validate_python(_public(workspace))
    w.entity, w.project = entity, project
    try:
        saved = w.save()
    except Exception as exc:
        raise ReportError(
            f"saving the workspace to W&B {entity}/{project} failed: "
            f"{type(exc).__name__}: {one_line_error(exc)[:200]}"
        ) from exc
    return getattr(saved, "url", "") or f"saved to {entity}/{project}"


def _public(node: Any) -> Any:
    """The spec less the private fields (``_id``, ``_internal_name``, ...) that pydantic's
    dump includes and its validation refuses; W&B assigns them again when saving."""
    if isinstance(node, dict):
        return {k: _public(v) for k, v in node.items() if not str(k).startswith("_")}
    return [_public(v) for v in node] if isinstance(node, list) else node
