"""Name a run's architecture by what it computes, not by the label it was launched with.

The quick study labels runs ``on_pre``; a case may set the fields by hand. Findings
compare architectures, so each run is matched against the named variants of
``conf/variant/*.yaml`` (the single definition of what ``pre_ln`` means).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from resnorm.paths import conf_dir

# The model fields that decide what a block computes (conf/model/default.yaml).
ARCH_FIELDS = (
    "residual",
    "norm_position",
    "norm",
    "norm_eps",
    "activation",
    "attn_scale",
    "qk_norm",
)


def _norm_eps(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def signature(fields: dict[str, Any]) -> tuple:
    """A hashable description of the block; norm fields are ignored when no norm is used."""
    f = {k: fields.get(k) for k in ARCH_FIELDS}
    f["residual"] = str(f["residual"]) if f["residual"] is not None else None
    if f["residual"] in ("True", "true"):  # YAML 1.1 reads a bare `on` as a boolean
        f["residual"] = "on"
    if f["residual"] in ("False", "false"):
        f["residual"] = "off"
    f["norm_eps"] = _norm_eps(f["norm_eps"])
    if f["norm_position"] == "none":
        f["norm"] = f["norm_eps"] = None
    return tuple(f[k] for k in ARCH_FIELDS)


@lru_cache(maxsize=1)
def named_variants() -> dict[tuple, str]:
    """signature -> variant name, for every conf/variant/*.yaml (first name wins on ties)."""
    root = Path(conf_dir())
    defaults = yaml.safe_load((root / "model" / "default.yaml").read_text()) or {}
    out: dict[tuple, str] = {}
    for path in sorted((root / "variant").glob("*.yaml")):
        spec = {**defaults, **(yaml.safe_load(path.read_text()) or {})}
        out.setdefault(signature(spec), path.stem)
    return out


def canonical_arch(fields: dict[str, Any], label: str | None) -> str:
    """The named variant whose fields the run has, else the run's own label."""
    sig = signature(fields)
    if any(v is None for v in sig[:2]):
        return label or "unknown"
    return named_variants().get(sig) or label or "custom"
