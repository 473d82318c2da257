"""From the Hydra config to objects: the data module and the task model."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from resnorm.data.spec import TaskSpec
from resnorm.models import Classifier, LanguageModel, PatchEmbed2d, TimePatchEmbed, TokenEmbed
from resnorm.models.block import check_block_options

ENCODER_KEYS = (
    "dim", "depth", "heads", "ffn_mult", "residual", "norm_position", "norm", "norm_eps",
    "dropout", "activation", "attn_scale", "qk_norm", "layerscale_init",
)  # fmt: skip
EMBEDS = {"image": PatchEmbed2d, "spectrogram": TimePatchEmbed, "tokens": TokenEmbed}


def encoder_kwargs(model_cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    kw = {k: model_cfg[k] for k in ENCODER_KEYS if k in model_cfg}
    # YAML and Hydra read a bare on/off as a boolean.
    if isinstance(kw.get("residual"), bool):
        kw["residual"] = "on" if kw["residual"] else "off"
    return kw


def check_model_config(model_cfg: DictConfig) -> None:
    """Validate the model options before any data is loaded or any training starts."""
    kw = encoder_kwargs(model_cfg)
    check_block_options(
        **{k: kw[k] for k in ("dim", "depth", "heads", "ffn_mult", "residual", "norm_position",
                              "norm", "norm_eps", "dropout", "activation")}
    )  # fmt: skip


def build_datamodule(cfg: DictConfig) -> Any:
    return instantiate(cfg.task.datamodule, seed=cfg.seed, _convert_="all")


def build_model(model_cfg: DictConfig, spec: TaskSpec) -> nn.Module:
    kw = encoder_kwargs(model_cfg)
    if spec.kind == "lm":
        return LanguageModel(spec.vocab_size, spec.seq_len, **kw)
    if spec.embed not in EMBEDS:
        raise ValueError(f"task embed {spec.embed!r} is unknown; allowed: {', '.join(EMBEDS)}")
    embed = EMBEDS[spec.embed](dim=kw["dim"], **spec.embed_args)
    return Classifier(embed, spec.num_classes, pool=spec.pool, **kw)


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """``{'model.depth': 4, ...}``: the flat form W&B filters and tables want."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out
