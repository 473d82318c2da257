"""Name a run's architecture: the variant it was launched as, plus the fields it overrode.

A summary records the variant's name and ``variant_overrides``: the model fields that differ
from that variant's definition (``resnorm.variants``). Findings compare architectures, so
an override that changes what the block computes makes another architecture: named after
the conf/variant file it then equals (pre_ln with ``model.norm=rmsnorm`` is rmsnorm_pre),
else ``pre_ln[activation=relu]``. Summaries written before ``variant_overrides`` existed
are matched by their fields instead (``legacy_arch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from resnorm.variants import SETTING_FIELDS, definitions, plain_value

# Fields that decide what a block computes, for summaries without a "model" dict (whose keys
# are the block config's fields); also what old summaries are matched on.
LEGACY_ARCH_FIELDS = (
    "residual",
    "norm_position",
    "norm",
    "norm_eps",
    "activation",
    "attn_scale",
    "qk_norm",
)
NORM_FIELDS = ("norm", "norm_eps")  # meaningless when the block has no norm


def arch_fields(summary: Mapping[str, Any]) -> tuple[str, ...]:
    """The block config's fields that make a variant, from the summary's "model" dict."""
    model = summary.get("model")
    if not isinstance(model, Mapping):
        return LEGACY_ARCH_FIELDS
    return tuple(k for k in model if k not in SETTING_FIELDS)


def signature(fields: Mapping[str, Any], names: Sequence[str]) -> tuple:
    """A hashable description of the block; norm fields are ignored when no norm is used."""
    f = {k: plain_value(k, fields.get(k)) for k in names}
    if f.get("residual") is not None:
        f["residual"] = str(f["residual"])
        f["residual"] = {"True": "on", "true": "on", "False": "off", "false": "off"}.get(
            f["residual"], f["residual"]
        )
    if f.get("norm_position") == "none":
        f.update({k: None for k in NORM_FIELDS if k in f})
    return tuple(f[k] for k in names)


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def arch_name(variant: str, overrides: Mapping[str, Any], names: Sequence[str]) -> str:
    """``variant`` unless an override changes the block: then the named variant the block
    now equals, else ``variant[field=value,...]``."""
    defs = definitions()
    changed = {k: v for k, v in overrides.items() if k in names}
    if not changed:
        return variant
    sig = signature({**defs[variant], **changed}, names)
    if sig == signature(defs[variant], names):
        return variant
    for name, spec in defs.items():
        if signature(spec, names) == sig:
            return name
    return f"{variant}[{','.join(f'{k}={_text(v)}' for k, v in sorted(changed.items()))}]"


def legacy_arch(fields: Mapping[str, Any], label: str | None) -> str:
    """LEGACY (summaries without ``variant_overrides``, runs from Optuna trial attrs or W&B,
    labels that name no conf/variant file): the named variant whose fields the run has,
    first name in file order on ties, else the run's own label."""
    sig = signature(fields, LEGACY_ARCH_FIELDS)
    if any(v is None for v in sig[:2]):
        return label or "unknown"
    return _legacy_names().get(sig) or label or "custom"


@lru_cache(maxsize=1)
def _legacy_names() -> dict[tuple, str]:
    out: dict[tuple, str] = {}
    for name, spec in definitions().items():
        out.setdefault(signature(spec, LEGACY_ARCH_FIELDS), name)
    return out


def arch_of(summary: Mapping[str, Any], model: Mapping[str, Any]) -> str:
    """The architecture name of one summary (``model``: its model fields, merged)."""
    label = summary.get("variant") or model.get("variant")
    overrides = summary.get("variant_overrides")
    if isinstance(overrides, Mapping) and label in definitions():
        return arch_name(str(label), overrides, arch_fields(summary))
    return legacy_arch(model, label)
