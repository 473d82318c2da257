"""From the Hydra config to objects: the block config, the data module and the task model."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
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
    stack_members,
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


def build_model(model_cfg: DictConfig | BlockConfig, spec: TaskSpec, members: int = 1) -> nn.Module:
    """The task's model; ``members=k`` packs k runs (parameters (k, ...), see models/members)."""
    block = model_cfg if isinstance(model_cfg, BlockConfig) else block_config(model_cfg)
    if spec.kind == "lm":
        return LanguageModel(spec.vocab_size, spec.seq_len, config=block, members=members)
    if spec.embed not in EMBEDS:
        raise ValueError(f"task embed {spec.embed!r} is unknown; allowed: {', '.join(EMBEDS)}")
    embed = EMBEDS[spec.embed](dim=block.dim, members=members, **spec.embed_args)
    return Classifier(embed, spec.num_classes, pool=spec.pool, config=block, members=members)


def build_pack_model(
    model_cfg: DictConfig | BlockConfig,
    spec: TaskSpec,
    seeds: Sequence[int],
    seed_fn: Callable[[int], Any],
    init_member: Callable[[nn.Module, int], Any] | None = None,
) -> tuple[nn.Module, list[nn.Module]]:
    """A pack whose member i starts from the init its solo run draws; also the solo models.

    A solo run seeds the global RNG, builds and sets up its data module, then builds its
    model. Data setup draws nothing from the global torch RNG (each embedded task uses its
    own generators, checked for image_digits, nlp_charlm, nlp_listops and speech_synth),
    so ``seed_fn(seed_i)`` right before building member i's solo model gives it exactly
    the solo run's init. ``init_member(solo, i)`` then runs what a solo run does next (a
    data-dependent init on member i's first batch). One seed returns the solo model itself;
    a larger pack is built under a forked RNG (its own init is overwritten), so the global
    RNG is left as the last member's solo build left it.
    """
    solos = []
    for i, seed in enumerate(seeds):
        seed_fn(seed)
        solos.append(build_model(model_cfg, spec))
        if init_member is not None:
            init_member(solos[-1], i)
    if len(solos) == 1:
        return solos[0], solos
    with torch.random.fork_rng(devices=[]):
        pack = build_model(model_cfg, spec, members=len(solos))
    stack_members(pack, solos)
    return pack, solos


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
