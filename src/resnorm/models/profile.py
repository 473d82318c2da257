"""Data-dependent initialisation: one forward pass on a real batch before training.

A module whose initial values depend on the data (Admin's ω) mixes in ``ProfiledInit``.
``profile_init`` runs one no-grad, eval-mode forward with every such module recording, then
lets each finalise. A model without such a module is left untouched and no batch is needed,
so every other variant's numbers do not depend on this step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ProfiledInit:
    """Mixin for a module initialised from a profiling pass.

    ``shared`` is one dict per pass, handed to every profiled module in model order, so a
    module can read what the modules before it in the forward pass recorded.
    """

    def begin_profile(self, shared: dict[str, Any]) -> None:
        raise NotImplementedError

    def end_profile(self) -> None:
        raise NotImplementedError


def profiled_modules(model: nn.Module) -> list[ProfiledInit]:
    return [m for m in model.modules() if isinstance(m, ProfiledInit)]


def wants_profile(model: nn.Module) -> bool:
    """Whether some module of ``model`` initialises itself from a profiling pass."""
    return bool(profiled_modules(model))


@torch.no_grad()
def profile_init(model: nn.Module, *inputs: torch.Tensor) -> bool:
    """Run the profiling pass on ``inputs`` if some module asks for it; say whether it ran.

    Eval mode (no dropout) so the pass draws no random numbers; every module's own mode is
    restored afterwards.
    """
    hooked = profiled_modules(model)
    if not hooked:
        return False
    modes = [(m, m.training) for m in model.modules()]
    shared: dict[str, Any] = {}
    model.eval()
    for m in hooked:
        m.begin_profile(shared)
    try:
        model(*inputs)
    finally:
        for m in hooked:
            m.end_profile()
        for m, mode in modes:
            m.training = mode
    return True
