"""``task=nlp_listops``: ListOps (Nangia & Bowman 2018), the grammar Long Range Arena uses.

An example is a nested prefix expression over the digits 0-9, e.g.
``[MAX 2 9 [MIN 4 7 ] 0 ]``, and its label is the expression's value (10 classes).
The operators are MIN, MAX, MED (median; the floor of the mean of the two middle values
when the count is even) and SM (sum modulo 10). Solving it needs the tree structure:
a bag of tokens does not determine the value, so a model has to compose across depth.

The data are generated, so the task needs no download; ``data_seed`` fixes them (same
seed, identical examples) independently of the run's shuffling ``seed``. Val and test
exclude any expression that also occurs in train. Chance is the majority-class
frequency of the test split (MAX pulls values towards 9, MIN towards 0, so it is above
0.1). Sequences are right-padded with PAD; attention has no padding mask, so the model
attends to pads too (harmless: their positions carry learned embeddings, and the
expression is always a prefix).
"""

from __future__ import annotations

import random
from collections import Counter

import pytorch_lightning as pl
import torch

from resnorm.data.spec import TaskSpec
from resnorm.data.split_loaders import SplitLoaders

OPERATORS = ("MIN", "MAX", "MED", "SM")
PAD = "<pad>"
CLOSE = "]"
VOCAB = (PAD, *(str(d) for d in range(10)), *(f"[{op}" for op in OPERATORS), CLOSE)
TOKEN_ID = {tok: i for i, tok in enumerate(VOCAB)}
DIGIT_ID = tuple(TOKEN_ID[str(d)] for d in range(10))
OPEN_ID = tuple(TOKEN_ID[f"[{op}"] for op in OPERATORS)
CLOSE_ID = TOKEN_ID[CLOSE]


def apply_operator(op: str, values: list[int]) -> int:
    if op == "MIN":
        return min(values)
    if op == "MAX":
        return max(values)
    if op == "SM":
        return sum(values) % 10
    s = sorted(values)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) // 2


def sample_expression(
    rng: random.Random, max_depth: int, max_args: int, p_nest: float, depth: int = 1
) -> tuple[list[int], int]:
    """One random expression as token ids, and its value, built in a single pass."""
    op = rng.randrange(len(OPERATORS))
    tokens, values = [OPEN_ID[op]], []
    for _ in range(rng.randint(2, max_args)):
        if depth < max_depth and rng.random() < p_nest:
            sub, value = sample_expression(rng, max_depth, max_args, p_nest, depth + 1)
            tokens.extend(sub)
        else:
            value = rng.randrange(10)
            tokens.append(DIGIT_ID[value])
        values.append(value)
    tokens.append(CLOSE_ID)
    return tokens, apply_operator(OPERATORS[op], values)


def expression_depth(tokens: list[int]) -> int:
    depth = best = 0
    for t in tokens:
        depth += t in OPEN_ID
        depth -= t == CLOSE_ID
        best = max(best, depth)
    return best


def generate_split(
    n: int,
    seed: int | str,
    max_depth: int,
    max_args: int,
    max_length: int,
    p_nest: float,
    min_depth: int = 1,
    exclude: set[tuple[int, ...]] | None = None,
) -> list[tuple[tuple[int, ...], int]]:
    """``n`` distinct expressions of at most ``max_length`` tokens and depth >= ``min_depth``,
    none in ``exclude``."""
    rng = random.Random(seed)
    exclude = exclude or set()
    seen: set[tuple[int, ...]] = set()
    out: list[tuple[tuple[int, ...], int]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(
                f"ListOps: cannot find {n} distinct expressions with max_length={max_length}, "
                f"max_depth={max_depth}, min_depth={min_depth}; raise max_length or lower n"
            )
        tokens, value = sample_expression(rng, max_depth, max_args, p_nest)
        key = tuple(tokens)
        if len(key) > max_length or key in seen or key in exclude:
            continue
        if min_depth > 1 and expression_depth(tokens) < min_depth:
            continue
        seen.add(key)
        out.append((key, value))
    return out


def to_tensors(
    examples: list[tuple[tuple[int, ...], int]], seq_len: int
) -> tuple[torch.Tensor, ...]:
    x = torch.full((len(examples), seq_len), TOKEN_ID[PAD], dtype=torch.long)
    for i, (tokens, _) in enumerate(examples):
        x[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
    y = torch.tensor([value for _, value in examples], dtype=torch.long)
    return x, y


def decode(ids: torch.Tensor | list[int]) -> str:
    """Token ids back to the expression text, pads dropped."""
    return " ".join(VOCAB[int(i)] for i in ids if int(i) != TOKEN_ID[PAD])


class ListOpsDataModule(SplitLoaders, pl.LightningDataModule):
    def __init__(
        self,
        n_train: int = 16000,
        n_val: int = 1000,
        n_test: int = 2000,
        max_depth: int = 4,
        min_depth: int = 2,
        max_args: int = 5,
        max_length: int = 48,
        p_nest: float = 0.3,
        pool: str = "mean",
        batch_size: int = 32,
        eval_batch_size: int = 500,
        data_seed: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if max_args < 2 or max_depth < 1 or not 1 <= min_depth <= max_depth:
            raise ValueError(
                f"ListOps needs max_args >= 2 (got {max_args}) and "
                f"1 <= min_depth <= max_depth (got {min_depth}, {max_depth})"
            )
        if max_length < 2 * min_depth + 1:
            raise ValueError(f"task max_length={max_length} is too short for depth {min_depth}")
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.grammar = {
            "max_depth": max_depth,
            "min_depth": min_depth,
            "max_args": max_args,
            "max_length": max_length,
            "p_nest": p_nest,
        }
        self.seq_len, self.pool = max_length, pool
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.data_seed, self.seed = data_seed, seed
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def spec(self) -> TaskSpec:
        """Valid at any time; chance needs the test labels, so this generates the data."""
        self.setup()
        return TaskSpec(
            kind="classification",
            embed="tokens",
            embed_args={"vocab_size": len(VOCAB), "seq_len": self.seq_len},
            num_classes=10,
            pool=self.pool,
            chance=self.majority_fraction("test"),
        )

    def majority_fraction(self, split: str) -> float:
        labels = self.splits[split][1].tolist()
        return Counter(labels).most_common(1)[0][1] / len(labels)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        used: set[tuple[int, ...]] = set()
        for split in ("train", "val", "test"):
            stream = f"listops/{self.data_seed}/{split}"  # str seeds are stable across runs
            examples = generate_split(self.sizes[split], stream, exclude=used, **self.grammar)
            used.update(tokens for tokens, _ in examples)
            self.splits[split] = to_tensors(examples, self.seq_len)
