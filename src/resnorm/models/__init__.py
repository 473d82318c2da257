"""Pure-torch model code: norms, residual modes, attention, Block, Encoder, task models.

Imports nothing else of resnorm, so it can be copied out and reused on its own.
"""

from resnorm.models.attention import Attention
from resnorm.models.block import ACTIVATIONS, Block, FeedForward
from resnorm.models.embeddings import PatchEmbed2d, TimePatchEmbed, TokenEmbed
from resnorm.models.encoder import Encoder
from resnorm.models.norms import NORMS, build_norm
from resnorm.models.residual import RESIDUALS
from resnorm.models.sublayer import SUBLAYERS
from resnorm.models.task_models import Classifier, LanguageModel

__all__ = [
    "ACTIVATIONS",
    "Attention",
    "Block",
    "Classifier",
    "Encoder",
    "FeedForward",
    "LanguageModel",
    "NORMS",
    "RESIDUALS",
    "PatchEmbed2d",
    "SUBLAYERS",
    "TimePatchEmbed",
    "TokenEmbed",
    "build_norm",
]
