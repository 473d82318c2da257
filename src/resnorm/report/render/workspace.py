"""A W&B workspace for a study, built with ``wandb-workspaces``: headline metrics and
stability scalars, every panel grouped by variant.

Online (API key and a reachable host) it is saved to the project; either way its spec is
written to ``wandb_workspace.json`` in the report folder, so it can be reviewed, diffed and
saved later (``Workspace`` round-trips through pydantic).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from resnorm.report.sources.classify import ReportError, Source
from resnorm.report.sources.wandb_project import check_online

SPEC_FILE = "wandb_workspace.json"
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
    headline.append(
        wr.LinePlot(
            title="train/loss by variant",
            y=["train/loss"],
            **by_variant(groupby_aggfunc="mean", groupby_rangefunc="minmax"),
        )
    )
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
    except ReportError as exc:
        return f"{path} (not saved to W&B: {exc})"
    if not entity:
        return f"{path} (not saved to W&B: no entity; set WANDB_ENTITY or --wandb-project E/P)"
    try:
        saved = w.save()
    except Exception as exc:
        return f"{path} (saving to W&B failed: {type(exc).__name__}: {exc})"
    return f"{getattr(saved, 'url', '') or 'saved'}; spec {path}"
