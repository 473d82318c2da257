"""From the Hydra config to objects: the block config, the data module and the task model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from resnorm.data.spec import TaskSpec
from resnorm.models import (
    BlockConfig,
    Classifier,
    LanguageModel,
    PatchEmbed2d,
    TimePatchEmbed,
    TokenEmbed,
    profile_init,
    wants_profile,
)

EMBEDS = {"image": PatchEmbed2d, "spectrogram": TimePatchEmbed, "tokens": TokenEmbed}


def block_config(model_cfg: DictConfig | Mapping[str, Any]) -> BlockConfig:
    """The block options of the ``model`` config, validated (ValueError names a bad one).

    The other keys of ``model`` (``variant``, ``compile``) belong to the harness.
    """
    return BlockConfig.from_options(model_cfg)


def build_datamodule(cfg: DictConfig) -> Any:
    return instantiate(cfg.task.datamodule, seed=cfg.seed, _convert_="all")


def build_model(model_cfg: DictConfig | BlockConfig, spec: TaskSpec) -> nn.Module:
    block = model_cfg if isinstance(model_cfg, BlockConfig) else block_config(model_cfg)
    if spec.kind == "lm":
        return LanguageModel(spec.vocab_size, spec.seq_len, config=block)
    if spec.embed not in EMBEDS:
        raise ValueError(f"task embed {spec.embed!r} is unknown; allowed: {', '.join(EMBEDS)}")
    embed = EMBEDS[spec.embed](dim=block.dim, **spec.embed_args)
    return Classifier(embed, spec.num_classes, pool=spec.pool, config=block)


def data_dependent_init(model: nn.Module, dm: Any) -> bool:
    """Initialise the modules that ask for data (Admin's ω) on the first training batch.

    The batch is the one training starts from: a pure function of the seed, drawn by a
    fresh loader that consumes nothing of the global RNG. A model that asks for nothing
    draws no batch, so its numbers cannot depend on this step. Says whether it ran.
    """
    if not wants_profile(model):
        return False
    inputs = next(iter(dm.train_dataloader()))[0]
    device = next(model.parameters()).device
    return profile_init(model, inputs.to(device))


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
