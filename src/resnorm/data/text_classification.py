"""``task=text_sst2`` / ``task=text_agnews``: real text classification via HF ``datasets``.

Data come from ``<data_dir>/<dataset>``, a ``DatasetDict`` written by ``save_to_disk``,
so a run never needs the network once the data are there; when that folder is missing
and the machine is online, the dataset is downloaded once and saved there. Offline and
missing is one clear :class:`DataError` that says how to fetch it elsewhere.

Splits: GLUE's SST-2 test labels are hidden (-1), so when the test split has no labels
(or is missing) the validation split becomes the test set; whenever there is then no
validation split, one is carved from train with the fixed ``split_seed``. The subword
tokenizer (BPE or WordPiece, HF ``tokenizers``) is trained on that final train split
only, so no val/test text shapes the vocabulary, and cached under
``<data_dir>/tokenizers/`` keyed by a hash of its training text and options. Sequences
are truncated and right-padded to ``seq_len``; attention has no padding mask, so pads
are attended to (acceptable for this study: every variant sees the same pads).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from resnorm.data.errors import DataError
from resnorm.data.spec import TaskSpec
from resnorm.data.split_loaders import SplitLoaders

log = logging.getLogger("resnorm")

PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1
TOKENIZERS = ("bpe", "wordpiece")
Split = tuple[list[str], np.ndarray]


def is_offline(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """Offline when HF says so by environment, or the hub is not reachable right now."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return True
    return False


def check_saved_files(path: Path) -> None:
    """Name the broken file of a ``save_to_disk`` folder before ``datasets`` trips on it."""
    import pyarrow as pa

    files = sorted(p for p in path.rglob("*") if p.is_file())
    if not any(p.name in ("dataset_dict.json", "state.json") for p in files):
        raise DataError(f"{path} is not a dataset saved with save_to_disk (no dataset_dict.json)")
    for f in files:
        if f.stat().st_size == 0:
            raise DataError(f"dataset file {f} is empty")
        try:
            if f.suffix == ".json":
                json.loads(f.read_text(encoding="utf-8"))
            elif f.suffix == ".arrow":
                with pa.memory_map(str(f)) as source:
                    pa.ipc.open_stream(source).schema  # noqa: B018  (reads the header only)
        except (ValueError, UnicodeDecodeError, pa.ArrowException) as exc:
            raise DataError(f"dataset file {f} is corrupt ({type(exc).__name__})") from exc


def load_dataset_dict(data_dir: str | os.PathLike[str], name: str, hub_id: str) -> Any:
    """The saved ``DatasetDict`` at ``<data_dir>/<name>``, downloading it once if online."""
    import datasets

    path = Path(data_dir).expanduser() / name
    if not path.exists():
        if is_offline():
            raise DataError(
                f"dataset {name} not found at {path} and this machine is offline; on a machine "
                f'with internet run: python -c "import datasets; datasets.load_dataset('
                f"'{hub_id}').save_to_disk('{path}')\" and copy that folder here "
                f"(or point task.data_dir / RESNORM_DATA at it)"
            )
        log.info("downloading %s to %s", hub_id, path)
        try:
            ds = datasets.load_dataset(hub_id, cache_dir=str(Path(data_dir) / "hf_cache"))
            ds.save_to_disk(str(path))
        except Exception as exc:
            raise DataError(f"downloading {hub_id} to {path} failed: {exc}") from exc
    check_saved_files(path)
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise DataError(f"{path} cannot be read as a saved dataset: {exc}") from exc
    if not isinstance(ds, datasets.DatasetDict) or "train" not in ds:
        raise DataError(f"{path} must be a DatasetDict with a 'train' split")
    return ds


def column(ds: Any, field: str, where: str) -> list[Any]:
    if field not in ds.column_names:
        raise DataError(f"{where} has no column {field!r}; columns: {', '.join(ds.column_names)}")
    return ds[field]


def choose_splits(
    ds: Any, text: str, label: str, val_fraction: float, seed: int, where: str
) -> dict[str, Split]:
    """train/val/test as (texts, labels); see the module docstring for the rules."""
    raw = {
        k: ([str(t or "") for t in column(ds[k], text, f"{where}/{k}")],
            np.asarray(column(ds[k], label, f"{where}/{k}"), dtype=np.int64))
        for k in ds
    }  # fmt: skip
    out: dict[str, Split] = {"train": raw["train"]}
    test_labelled = "test" in raw and len(raw["test"][1]) and (raw["test"][1] >= 0).all()
    if test_labelled:
        out["test"] = raw["test"]
    elif "validation" in raw:
        out["test"] = raw.pop("validation")
    else:
        raise DataError(f"{where} has no labelled test or validation split")
    if "validation" in raw:
        out["val"] = raw["validation"]
    else:
        texts, labels = out["train"]
        n_val = max(1, round(val_fraction * len(texts)))
        if n_val >= len(texts):
            raise DataError(f"{where}/train has {len(texts)} rows: too few to carve a val split")
        order = np.random.default_rng(seed).permutation(len(texts))
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        out["val"] = ([texts[i] for i in val], labels[val])
        out["train"] = ([texts[i] for i in train], labels[train])
    for k, (texts, labels) in out.items():
        if not any(t.strip() for t in texts):
            raise DataError(f"{where}: the {k} split has no text")
        if (labels < 0).any():
            raise DataError(f"{where}: the {k} split has negative (hidden) labels")
    return out


def tokenizer_path(cache_dir: Path, name: str, texts: list[str], options: dict[str, Any]) -> Path:
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for t in texts:
        h.update(t.encode("utf-8", "replace") + b"\0")
    kind, vocab = options["kind"], options["vocab_size"]
    return cache_dir / f"{name}-{kind}{vocab}-{h.hexdigest()[:16]}.json"


def train_tokenizer(texts: list[str], kind: str, vocab_size: int, lowercase: bool) -> Any:
    """A subword tokenizer learnt from ``texts``: [PAD]=0, [UNK]=1."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if kind not in TOKENIZERS:
        raise ValueError(f"task.tokenizer={kind!r} is not a valid choice; allowed: bpe, wordpiece")
    kw = {"vocab_size": vocab_size, "min_frequency": 2, "special_tokens": [PAD, UNK],
          "show_progress": False}  # fmt: skip
    if kind == "bpe":
        tok, trainer = Tokenizer(models.BPE(unk_token=UNK)), trainers.BpeTrainer(**kw)
    else:
        tok, trainer = Tokenizer(models.WordPiece(unk_token=UNK)), trainers.WordPieceTrainer(**kw)
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(norms)
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok


def cached_tokenizer(path: Path, texts: list[str], options: dict[str, Any]) -> Any:
    """Load the tokenizer cached at ``path``, or train it and try to cache it there."""
    from tokenizers import Tokenizer

    if path.is_file():
        try:
            return Tokenizer.from_file(str(path))
        except Exception:  # a derived file: a broken cache is rebuilt, not fatal
            log.warning("tokenizer cache %s is unreadable; retraining it", path)
    tok = train_tokenizer(texts, **options)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tok.save(str(tmp))
        os.replace(tmp, path)
    except OSError as exc:  # read-only data dir: train each time instead
        log.warning("cannot cache the tokenizer at %s: %s", path, exc)
    return tok


def encode(tok: Any, texts: list[str], seq_len: int) -> torch.Tensor:
    tok.enable_truncation(max_length=seq_len)
    tok.enable_padding(length=seq_len, pad_id=0, pad_token=PAD)
    return torch.from_numpy(np.asarray([e.ids for e in tok.encode_batch(texts)], dtype=np.int64))


class TextClassificationDataModule(SplitLoaders, pl.LightningDataModule):
    def __init__(
        self,
        dataset: str = "sst2",
        hub_id: str = "stanfordnlp/sst2",
        text_field: str = "sentence",
        label_field: str = "label",
        data_dir: str = "data",
        seq_len: int = 64,
        vocab_size: int = 8000,
        tokenizer: str = "bpe",
        lowercase: bool = True,
        pool: str = "mean",
        val_fraction: float = 0.05,
        split_seed: int = 0,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if tokenizer not in TOKENIZERS:
            raise ValueError(
                f"task.tokenizer={tokenizer!r} is not a valid choice; allowed: bpe, wordpiece"
            )
        if seq_len < 1 or vocab_size < 3:
            raise ValueError(f"task seq_len={seq_len} and vocab_size={vocab_size} are too small")
        self.dataset, self.hub_id, self.data_dir = dataset, hub_id, data_dir
        self.fields = (text_field, label_field)
        self.seq_len, self.pool = seq_len, pool
        self.tok_options = {"kind": tokenizer, "vocab_size": vocab_size, "lowercase": lowercase}
        self.val_fraction, self.split_seed, self.seed = val_fraction, split_seed, seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_classes = 0
        self.tokenizer: Any = None
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def spec(self) -> TaskSpec:
        """Valid at any time: vocabulary and class count come from the data (loads them)."""
        self.setup()
        labels = self.splits["test"][1].tolist()
        return TaskSpec(
            kind="classification",
            embed="tokens",
            embed_args={"vocab_size": self.tokenizer.get_vocab_size(), "seq_len": self.seq_len},
            num_classes=self.num_classes,
            pool=self.pool,
            chance=Counter(labels).most_common(1)[0][1] / len(labels),  # majority class
        )

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        ds = load_dataset_dict(self.data_dir, self.dataset, self.hub_id)
        where = str(Path(self.data_dir).expanduser() / self.dataset)
        raw = choose_splits(ds, *self.fields, self.val_fraction, self.split_seed, where)
        feature = ds["train"].features.get(self.fields[1])
        self.num_classes = int(getattr(feature, "num_classes", 0) or raw["train"][1].max() + 1)
        for k, (_, labels) in raw.items():
            if labels.max() >= self.num_classes:
                raise DataError(f"{where}: the {k} split has label {labels.max()} "
                                f"but the dataset declares {self.num_classes} classes")  # fmt: skip
        train_texts = raw["train"][0]
        cache = Path(self.data_dir).expanduser() / "tokenizers"
        path = tokenizer_path(cache, self.dataset, train_texts, self.tok_options)
        self.tokenizer = cached_tokenizer(path, train_texts, self.tok_options)
        self.splits = {
            k: (encode(self.tokenizer, texts, self.seq_len), torch.from_numpy(labels))
            for k, (texts, labels) in raw.items()
        }
