"""``task=nlp_charlm``: causal character-level LM on CPython's ``pydoc_data.topics``.

Every CPython ships these ~465 kB of English documentation prose (what ``help('for')``
prints), so the task needs no download. The split is by *topic*, so validation and test
text is prose the model never saw, not a neighbouring window of the same page. pydoc's
topics overlap (``customization`` is a section of ``specialnames``, ``try`` of
``compound``), so topics that share a paragraph are grouped and each group goes to one
split as a whole: otherwise the held-out splits would repeat training text verbatim.

Chance level for an LM: ``TaskSpec.chance`` is the next-char accuracy of a uniform
guess, ``1 / vocab_size``; the matching uniform-guess loss is ``log2(vocab_size)`` bits
per char (about 6.7 bpc here), the number a model's ``test/bpc`` must beat.
"""

from __future__ import annotations

import math

import numpy as np
import pytorch_lightning as pl
import torch

from resnorm.data.errors import DataError
from resnorm.data.spec import TaskSpec
from resnorm.data.split_loaders import SplitLoaders

UNK = "<unk>"
TOPIC_SEPARATOR = "\n\n"
MIN_SHARED_PARAGRAPH = 80  # shorter repeats ("Changed in version 3.3.") are not leakage


def load_topics() -> dict[str, str]:
    """pydoc's topic name -> text; present in every CPython install."""
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # a stripped-down Python build without pydoc_data
        raise DataError(
            "task nlp_charlm needs the standard-library module pydoc_data.topics, "
            "which this Python build lacks"
        ) from exc
    return dict(topics)


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n")]


def topic_groups(topics: dict[str, str]) -> list[list[str]]:
    """Topics linked by a shared long paragraph, transitively (union-find), sorted."""
    parent = {name: name for name in topics}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    first_seen: dict[str, str] = {}
    for name in sorted(topics):
        for p in paragraphs(topics[name]):
            if len(p) < MIN_SHARED_PARAGRAPH:
                continue
            if p in first_seen:
                parent[root(name)] = root(first_seen[p])
            else:
                first_seen[p] = name
    groups: dict[str, list[str]] = {}
    for name in sorted(topics):
        groups.setdefault(root(name), []).append(name)
    return sorted(groups.values())


def split_topics(
    topics: dict[str, str], fractions: tuple[float, float], seed: int
) -> dict[str, list[str]]:
    """Assign whole topic groups to train/val/test, ``fractions`` = (val, test) of chars.

    Groups are visited in a seeded permutation; each goes to val, then test, while it
    still fits that split's character budget, else to train. The result is a pure
    function of the topics and ``seed``.
    """
    groups = topic_groups(topics)
    sizes = [sum(len(topics[name]) for name in group) for group in groups]
    budgets = {"val": fractions[0] * sum(sizes), "test": fractions[1] * sum(sizes)}
    used = {"train": 0, "val": 0, "test": 0}
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i in np.random.default_rng(seed).permutation(len(groups)):
        split = next((k for k in ("val", "test") if used[k] + sizes[i] <= budgets[k]), "train")
        parts[split].extend(groups[i])
        used[split] += sizes[i]
    return {k: sorted(v) for k, v in parts.items()}


def build_vocab(text: str) -> list[str]:
    """``<unk>`` (id 0) followed by every character of ``text``, sorted."""
    return [UNK, *sorted(set(text))]


def encode(text: str, vocab: list[str]) -> torch.Tensor:
    index = {ch: i for i, ch in enumerate(vocab)}
    return torch.tensor([index.get(ch, 0) for ch in text], dtype=torch.long)


def strided_windows(ids: torch.Tensor, seq_len: int, stride: int) -> tuple[torch.Tensor, ...]:
    """Inputs and next-char targets of every window starting at a multiple of ``stride``.

    Both are views of ``ids`` (``unfold``), so overlapping windows cost no memory.
    """
    if len(ids) < seq_len + 1:
        raise DataError(f"text of {len(ids)} chars is shorter than one window of {seq_len + 1}")
    return ids[:-1].unfold(0, seq_len, stride), ids[1:].unfold(0, seq_len, stride)


def eval_windows(ids: torch.Tensor, seq_len: int, max_windows: int) -> tuple[torch.Tensor, ...]:
    """Non-overlapping windows, at most ``max_windows`` spread evenly over the text."""
    x, y = strided_windows(ids, seq_len, seq_len)
    keep = torch.linspace(0, len(x) - 1, min(max_windows, len(x))).round().long().unique()
    return x[keep].contiguous(), y[keep].contiguous()


class CharLMDataModule(SplitLoaders, pl.LightningDataModule):
    def __init__(
        self,
        seq_len: int = 64,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        train_stride: int = 8,
        max_eval_windows: int = 128,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if seq_len < 1 or train_stride < 1 or max_eval_windows < 1:
            raise ValueError(
                f"task seq_len={seq_len}, train_stride={train_stride} and "
                f"max_eval_windows={max_eval_windows} must be positive integers"
            )
        self.seq_len, self.train_stride = seq_len, train_stride
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.max_eval_windows = max_eval_windows
        self.fractions = (val_fraction, test_fraction)
        self.split_seed, self.seed = split_seed, seed
        self.topics: dict[str, list[str]] = {}
        self.vocab: list[str] = []
        self.texts: dict[str, str] = {}
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def spec(self) -> TaskSpec:
        """Valid at any time: the vocabulary comes from the split, which is cheap."""
        self.setup()
        v = len(self.vocab)
        return TaskSpec(kind="lm", embed="tokens", vocab_size=v, seq_len=self.seq_len, chance=1 / v)

    @property
    def uniform_bpc(self) -> float:
        """Bits per char of a uniform guess over the vocabulary: the LM's chance level."""
        self.setup()
        return math.log2(len(self.vocab))

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        topics = load_topics()
        self.topics = split_topics(topics, self.fractions, self.split_seed)
        self.texts = {k: TOPIC_SEPARATOR.join(topics[n] for n in names)
                      for k, names in self.topics.items()}  # fmt: skip
        self.vocab = build_vocab(self.texts["train"])
        ids = {split: encode(text, self.vocab) for split, text in self.texts.items()}
        self.splits = {
            "train": strided_windows(ids["train"], self.seq_len, self.train_stride),
            "val": eval_windows(ids["val"], self.seq_len, self.max_eval_windows),
            "test": eval_windows(ids["test"], self.seq_len, self.max_eval_windows),
        }
