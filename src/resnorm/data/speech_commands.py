"""``task=speech_commands12|speech_commands35``: Google Speech Commands v2 (Warden 2018).

Reads the official folder layout, ``<root>/<word>/<speaker>_nohash_<n>.wav`` with
``validation_list.txt`` and ``testing_list.txt`` (every file not listed is training)
and ``_background_noise_/*.wav``. Two set-ups:

- 35 classes: every word; chance is the test split's majority class.
- 12 classes: the 10 core words, ``_unknown_`` (the other 25 words) and ``_silence_``,
  sized as in TensorFlow's reference recipe: per split, unknown and silence each add
  ``fraction × (core-word clips)`` clips. Unknown clips are a seeded sample of that
  split's other-word clips; silence clips are 1 s crops of the background-noise files
  at a random volume, each file cut in time 80/10/10 into train/val/test regions so no
  noise is shared across splits.

Reading ~105k WAVs takes a while, so the log-mel features are computed once and cached
as float16 tensors in ``<data_dir>/cache/``, keyed by the file listing and settings.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from resnorm.data.audio import (
    SAMPLE_RATE,
    LogMelDataModule,
    MelConfig,
    fit_length,
    log_mel,
    read_wav,
    resample,
)
from resnorm.data.errors import DataError
from resnorm.data.speech_synth import AUXILIARY_WORDS, CORE_WORDS, SILENCE, UNKNOWN

DIRNAME = "speech_commands_v2"
ARCHIVE = "speech_commands_v0.02.tar.gz"
URL = f"http://download.tensorflow.org/data/{ARCHIVE}"
NOISE_DIR = "_background_noise_"
ALL_WORDS = tuple(sorted(CORE_WORDS + AUXILIARY_WORDS))
SPLITS = ("train", "val", "test")
NOISE_REGIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
CACHE_VERSION = 1


def class_names(classes: int) -> list[str]:
    if classes == 12:
        return [*CORE_WORDS, UNKNOWN, SILENCE]
    if classes == 35:
        return list(ALL_WORDS)
    raise ValueError(f"task.datamodule.classes={classes} is not a valid choice; allowed: 12, 35")


def find_root(data_dir: str | os.PathLike[str]) -> Path:
    root = Path(data_dir) / DIRNAME
    if not root.is_dir():
        raise DataError(
            f"Speech Commands v2 not found at {root}: download {ARCHIVE} ({URL}) and extract "
            f"it into {root} (e.g. mkdir -p {root} && tar -xzf {ARCHIVE} -C {root})"
        )
    for name in ("validation_list.txt", "testing_list.txt"):
        if not (root / name).is_file():
            raise DataError(f"{root / name} is missing: re-extract {ARCHIVE} into {root}")
    return root


def read_list(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def index_files(root: Path, classes: int) -> dict[str, list[tuple[str, str]]]:
    """{split: [(relative path, word), ...]} following the official list files."""
    words = sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    )
    if classes == 35 and (missing := sorted(set(ALL_WORDS) - set(words))):
        raise DataError(f"{root} lacks the word folders {missing}: re-extract {ARCHIVE}")
    lists = {
        "val": read_list(root / "validation_list.txt"),
        "test": read_list(root / "testing_list.txt"),
    }
    index: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    for word in words:
        for wav in sorted((root / word).glob("*.wav")):
            rel = f"{word}/{wav.name}"
            split = "test" if rel in lists["test"] else "val" if rel in lists["val"] else "train"
            index[split].append((rel, word))
    listed = {rel for rel, _ in index["val"] + index["test"]}
    if absent := sorted((lists["val"] | lists["test"]) - listed):
        raise DataError(f"{root / absent[0]} is in the split lists but not on disk")
    return index


def noise_files(root: Path) -> list[Path]:
    files = sorted((root / NOISE_DIR).glob("*.wav"))
    if not files:
        raise DataError(f"{root / NOISE_DIR} has no WAV files (needed for the _silence_ class)")
    return files


def load_audio(path: Path) -> np.ndarray:
    """A WAV as float32 at 16 kHz (the dataset is 16 kHz already; others are resampled)."""
    audio, rate = read_wav(path)
    if rate != SAMPLE_RATE:
        audio = resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()
    return audio


def silence_clips(root: Path, split: str, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """1 s crops of the background noise inside the split's time region, random volume."""
    if count == 0:
        return []
    tracks = [load_audio(p) for p in noise_files(root)]
    lo, hi = NOISE_REGIONS[split]
    clips = []
    for _ in range(count):
        track = tracks[int(rng.integers(len(tracks)))]
        first, last = int(lo * len(track)), int(hi * len(track)) - SAMPLE_RATE
        start = int(rng.integers(first, max(first, last) + 1))
        clip = fit_length(track[start : start + SAMPLE_RATE], SAMPLE_RATE)
        clips.append(clip * np.float32(rng.uniform(0.0, 1.0)))
    return clips


def select(
    index: dict[str, list[tuple[str, str]]],
    classes: int,
    unknown_fraction: float,
    silence_fraction: float,
    seed: int,
) -> dict[str, tuple[list[str | None], list[int]]]:
    """{split: (relative paths, None for a silence clip; labels)} for the set-up."""
    names = class_names(classes)
    label_of = {w: i for i, w in enumerate(names)}
    out = {}
    for s, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, s])
        files = index[split]
        if classes == 35:  # folders outside the official 35 words are ignored
            kept = [(r, label_of[w]) for r, w in files if w in label_of]
            out[split] = ([r for r, _ in kept], [c for _, c in kept])
            continue
        known = [(r, label_of[w]) for r, w in files if w in CORE_WORDS]
        others = [r for r, w in files if w not in CORE_WORDS]
        n_unknown = min(len(others), math.ceil(unknown_fraction * len(known)))
        picked = sorted(rng.choice(len(others), n_unknown, replace=False)) if n_unknown else []
        n_silence = math.ceil(silence_fraction * len(known))
        paths: list[str | None] = [r for r, _ in known] + [others[i] for i in picked]
        paths += [None] * n_silence
        labels = [c for _, c in known] + [label_of[UNKNOWN]] * n_unknown
        labels += [label_of[SILENCE]] * n_silence
        out[split] = (paths, labels)
    return out


def features(
    root: Path, paths: list[str | None], split: str, mel: MelConfig, seed: int
) -> torch.Tensor:
    """Log-mel (N, n_mels, frames) as float16, computed in blocks to bound memory."""
    rng = np.random.default_rng([seed, SPLITS.index(split), 1])
    silence = iter(silence_clips(root, split, sum(p is None for p in paths), rng))
    blocks, block = [], 2048
    for start in range(0, len(paths), block):
        waves = [
            next(silence) if p is None else fit_length(load_audio(root / p), SAMPLE_RATE)
            for p in paths[start : start + block]
        ]
        blocks.append(log_mel(torch.from_numpy(np.stack(waves)), mel).half())
    if not blocks:
        return torch.zeros(0, mel.n_mels, mel.frames(), dtype=torch.float16)
    return torch.cat(blocks)


class SpeechCommandsDataModule(LogMelDataModule):
    """Speech Commands v2 in the 12- or 35-class set-up (``classes``)."""

    def __init__(
        self,
        data_dir: str = "data",
        classes: int = 12,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        patch: int = 4,
        n_mels: int = 40,
        spec_augment: dict[str, int] | None = None,
        unknown_fraction: float = 0.1,
        silence_fraction: float = 0.1,
        split_seed: int = 0,
        seed: int = 0,
    ) -> None:
        self.names = class_names(classes)
        self.data_dir, self.classes, self.split_seed = data_dir, classes, split_seed
        self.fractions = (unknown_fraction, silence_fraction)
        super().__init__(
            num_classes=len(self.names), batch_size=batch_size, eval_batch_size=eval_batch_size,
            patch=patch, n_mels=n_mels, spec_augment=spec_augment, seed=seed,
        )  # fmt: skip

    def cache_path(self, root: Path, index: dict[str, list[tuple[str, str]]]) -> Path:
        listing = hashlib.sha256()
        for split in SPLITS:
            for rel, _ in index[split]:
                listing.update(f"{split}/{rel}:{(root / rel).stat().st_size}\n".encode())
        noise = [f"{p.name}:{p.stat().st_size}" for p in sorted((root / NOISE_DIR).glob("*.wav"))]
        blob = {
            "version": CACHE_VERSION, "classes": self.classes, "fractions": self.fractions,
            "split_seed": self.split_seed, "mel": self.mel.__dict__, "noise": noise,
            "listing": listing.hexdigest(),
        }  # fmt: skip
        key = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]
        return Path(self.data_dir) / "cache" / f"{DIRNAME}-{self.classes}-{key}.pt"

    def load_features(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        root = find_root(self.data_dir)
        index = index_files(root, self.classes)
        path = self.cache_path(root, index)
        if path.is_file():
            try:
                saved = torch.load(path, weights_only=True)
                return {s: (saved[f"{s}_x"], saved[f"{s}_y"]) for s in SPLITS}
            except Exception:  # a torn or stale cache file: rebuild it
                path.unlink(missing_ok=True)
        chosen = select(index, self.classes, *self.fractions, self.split_seed)
        out = {
            s: (
                features(root, chosen[s][0], s, self.mel, self.split_seed),
                torch.tensor(chosen[s][1], dtype=torch.long),
            )
            for s in SPLITS
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tensors = {f"{s}_x": x for s, (x, _) in out.items()}
        tensors.update({f"{s}_y": y for s, (_, y) in out.items()})
        torch.save(tensors, tmp)
        os.replace(tmp, path)
        return out
