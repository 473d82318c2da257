"""The named block variants as plain data: ``conf/variant/<name>.yaml`` over
``conf/model/default.yaml``, read with PyYAML (no Hydra, no torch), so that a training job
can record how its model departs from the variant it names and a report can read it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from resnorm.paths import conf_dir

# Model fields that size or regularise a block, or that the task decides: a run with another
# depth or width is the same variant at another setting, never another variant.
SETTING_FIELDS = frozenset(
    {"variant", "dim", "depth", "heads", "ffn_mult", "dropout", "causal", "compile"}
)


@lru_cache(maxsize=1)
def definitions() -> dict[str, dict[str, Any]]:
    """Variant name -> every model field it implies (defaults, then the variant's file)."""
    root = Path(conf_dir())
    defaults = yaml.safe_load((root / "model" / "default.yaml").read_text()) or {}
    return {
        path.stem: {**defaults, **(yaml.safe_load(path.read_text()) or {})}
        for path in sorted((root / "variant").glob("*.yaml"))
    }


def plain_value(field: str, value: Any) -> Any:
    """A field's value as the block reads it: YAML 1.1 reads a bare ``on``/``off`` as a
    boolean and PyYAML reads ``1e-5`` as text, yet equal settings must compare equal."""
    if field == "residual" and isinstance(value, bool):
        return "on" if value else "off"
    if field == "norm_eps" and value is not None and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return value


def variant_overrides(model: Mapping[str, Any], variant: str | None) -> dict[str, Any] | None:
    """The model fields of a resolved config that differ from the definition of ``variant``
    (its name excepted); None when ``variant`` names no conf/variant file."""
    spec = definitions().get(str(variant))
    if spec is None:
        return None
    return {
        k: v
        for k, v in model.items()
        if k != "variant" and (k not in spec or plain_value(k, v) != plain_value(k, spec[k]))
    }
