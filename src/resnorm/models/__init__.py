"""Pure-torch model code: norms, residual modes, attention, Block, Encoder, task models.

Imports nothing else of resnorm, so it can be copied out and reused on its own.
"""

from resnorm.models.attention import Attention
from resnorm.models.block import Block
from resnorm.models.config import BlockConfig
from resnorm.models.dropout import MemberDropout, MemberStreams, attach_member_dropout
from resnorm.models.embeddings import PatchEmbed2d, TimePatchEmbed, TokenEmbed
from resnorm.models.encoder import Encoder
from resnorm.models.feedforward import ACTIVATIONS, FeedForward
from resnorm.models.layers import Embedding, Linear, PatchProjection
from resnorm.models.members import member_view, members_of, share_member_grads, stack_members
from resnorm.models.norms import NORMS, build_norm
from resnorm.models.profile import ProfiledInit, profile_init, wants_profile
from resnorm.models.residual import RESIDUALS, Residual
from resnorm.models.sublayer import SUBLAYERS, Sublayer
from resnorm.models.task_models import Classifier, LanguageModel

__all__ = [
    "ACTIVATIONS",
    "Attention",
    "Block",
    "BlockConfig",
    "Classifier",
    "Embedding",
    "Encoder",
    "FeedForward",
    "LanguageModel",
    "MemberDropout",
    "MemberStreams",
    "Linear",
    "NORMS",
    "PatchEmbed2d",
    "PatchProjection",
    "ProfiledInit",
    "RESIDUALS",
    "Residual",
    "SUBLAYERS",
    "Sublayer",
    "TimePatchEmbed",
    "TokenEmbed",
    "attach_member_dropout",
    "build_norm",
    "member_view",
    "members_of",
    "profile_init",
    "share_member_grads",
    "stack_members",
    "wants_profile",
]
