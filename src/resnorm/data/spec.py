"""What a task tells the model builder: plain data, so data/ never imports models/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskSpec:
    """``kind`` is 'classification' or 'lm'; ``embed`` names the input embedding
    ('image' | 'spectrogram' | 'tokens') and ``embed_args`` its constructor arguments."""

    kind: str
    embed: str
    embed_args: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 0
    vocab_size: int = 0
    seq_len: int = 0
    pool: str = "cls"
    chance: float = 0.0
