"""``task=speech_synth``: keyword spotting on the 10 core Speech Commands words, spoken
by eSpeak NG, so that the speech task needs no download.

Each clip is one word from one voice (an English eSpeak language × a voice variant such
as ``m3``, ``f2`` or ``klatt``) at a random speaking rate, pitch and pitch range,
resampled to 16 kHz, shifted to a random place in a 1 s window and mixed with seeded
synthetic noise (white, pink or brown) at a random SNR. Voice variants are disjoint
across train/val/test, so the test accuracy measures generalisation to unseen voices.
Optional ``_unknown_`` (other Speech Commands words) and ``_silence_`` (noise only)
classes follow the 12-class Speech Commands set-up. The voices and every clip's random
draws are planned in ``resnorm.data.speech_plan``; this module renders and caches them.

The clips are generated once and cached under ``<data_dir>/speech_synth/<key>/`` where
``key`` hashes every generation setting; regenerating gives identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnorm.data import espeak
from resnorm.data.audio import SAMPLE_RATE, LogMelDataModule, MelConfig, log_mel
from resnorm.data.speech_plan import (
    AUXILIARY_WORDS,
    CORE_WORDS,
    GENERATOR_VERSION,
    NOISE_COLOURS,
    SILENCE,
    SPLITS,
    UNKNOWN,
    SynthSettings,
    plan_clips,
)

# The vocabulary is also read from here (speech_commands.py).
__all__ = [
    "AUXILIARY_WORDS",
    "CACHE_FILES",
    "CORE_WORDS",
    "SILENCE",
    "UNKNOWN",
    "SpeechSynthDataModule",
    "SynthSettings",
    "cached_log_mel",
    "generate",
    "load_or_generate",
    "render",
]

NOISE_BANK_SECONDS = 30


def noise_bank(
    seed: int, split: int, alpha: float, seconds: int = NOISE_BANK_SECONDS
) -> np.ndarray:
    """A long noise track with power spectrum ∝ 1/f^alpha; clips take random 1 s crops.

    One track per (split, colour), so no stretch of noise is shared across splits.
    """
    n = seconds * SAMPLE_RATE
    white = np.random.default_rng([seed, split, round(alpha * 10)]).standard_normal(n)
    spectrum = np.fft.rfft(white)
    f = np.maximum(np.arange(len(spectrum)), 1.0)
    spectrum *= f ** (-alpha / 2)
    spectrum[0] = 0.0  # no DC
    return np.fft.irfft(spectrum, n=n).astype(np.float32)


def render(settings: SynthSettings, plan: dict[str, Any]) -> np.ndarray:
    """Synthesize, shift, add noise at the planned SNR, set the level: (N, 16000) int16."""
    names = settings.class_names()
    words = [
        None if names[c] == SILENCE else AUXILIARY_WORDS[a] if names[c] == UNKNOWN else names[c]
        for c, a in zip(plan["label"], plan["aux_word"], strict=True)
    ]
    spoken = [i for i, w in enumerate(words) if w is not None]
    requests = [
        espeak.Utterance(
            words[i], plan["voices"][plan["voice"][i]], int(plan["rate"][i]),
            int(plan["pitch"][i]), int(plan["pitch_range"][i]),
        )
        for i in spoken
    ]  # fmt: skip
    spoken_audio = espeak.synthesize_many(requests, chunks=settings.synth_chunks)
    audio = dict(zip(spoken, spoken_audio, strict=True))
    banks = {
        (split, colour): noise_bank(settings.gen_seed, split, alpha)
        for split in range(len(SPLITS))
        for colour, alpha in enumerate(NOISE_COLOURS.values())
    }
    out = np.empty((len(words), SAMPLE_RATE), dtype=np.int16)
    for start in range(0, len(words), 512):  # blocks keep the float working set small
        rows = range(start, min(start + 512, len(words)))
        out[start : rows.stop] = mix_block(rows, audio, banks, plan)
    return out


def mix_block(
    rows: range,
    audio: dict[int, np.ndarray],
    banks: dict[tuple[int, int], np.ndarray],
    plan: dict[str, Any],
) -> np.ndarray:
    """Place each word at its offset, add its noise crop at its SNR, set its peak level."""
    speech = np.zeros((len(rows), SAMPLE_RATE), dtype=np.float32)
    noise = np.empty_like(speech)
    lengths = np.zeros(len(rows), dtype=np.int64)
    for j, i in enumerate(rows):
        clip = audio.get(i)
        if clip is not None:
            clip = clip[:SAMPLE_RATE]
            lengths[j] = len(clip)
            at = int(plan["offset"][i] * (SAMPLE_RATE - len(clip)))
            speech[j, at : at + len(clip)] = clip / np.float32(32768.0)
        bank = banks[int(plan["split"][i]), int(plan["colour"][i])]
        at = int(plan["noise_offset"][i] * (len(bank) - SAMPLE_RATE))
        noise[j] = bank[at : at + SAMPLE_RATE]
    noise -= noise.mean(axis=1, keepdims=True)
    noise /= np.maximum(np.sqrt((noise**2).mean(axis=1, keepdims=True)), 1e-12)
    idx = np.asarray(rows)
    power = (speech**2).sum(axis=1) / np.maximum(lengths, 1)
    scale = np.where(lengths > 0, np.sqrt(power / 10 ** (plan["snr_db"][idx] / 10)), 1.0)
    mix = speech + noise * scale[:, None].astype(np.float32)
    level = 10 ** (plan["level_db"][idx] / 20) / np.maximum(np.abs(mix).max(axis=1), 1e-12)
    mix *= (level * 32767.0)[:, None].astype(np.float32)
    return np.clip(np.round(mix), -32768, 32767).astype(np.int16)


CACHE_FILES = ("waves.npy", "labels.npy", "voices.npy", "splits.npy", "meta.json")


def generate(settings: SynthSettings, directory: Path) -> None:
    """Write the dataset's files into ``directory`` (which must not exist yet)."""
    t0 = time.perf_counter()
    plan = plan_clips(settings)
    print(
        f"resnorm: generating speech_synth ({len(plan['label'])} clips, once) -> {directory}",
        file=sys.stderr, flush=True,
    )  # fmt: skip
    waves = render(settings, plan)
    tmp = directory.with_name(f"{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "waves.npy", waves)
    np.save(tmp / "labels.npy", plan["label"])
    np.save(tmp / "voices.npy", plan["voice"])
    np.save(tmp / "splits.npy", plan["split"].astype(np.int8))
    sizes = {s: int((plan["split"] == i).sum()) for i, s in enumerate(SPLITS)}
    meta = {
        "settings": settings.resolved(), "generator_version": GENERATOR_VERSION,
        "espeak": espeak.version(), "classes": settings.class_names(), "voices": plan["voices"],
        "splits": list(SPLITS), "sizes": sizes,
    }  # fmt: skip
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    try:
        tmp.rename(directory)
    except OSError:  # another process finished the same set first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not directory.is_dir():
            raise
    print(
        f"resnorm: generated speech_synth in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr, flush=True,
    )  # fmt: skip


def load_or_generate(settings: SynthSettings, data_dir: str | os.PathLike[str]) -> Path:
    """The cache directory for ``settings``, generating it on first use."""
    directory = Path(data_dir) / "speech_synth" / settings.key()
    if not all((directory / f).is_file() for f in CACHE_FILES):
        directory.parent.mkdir(parents=True, exist_ok=True)
        if directory.exists():  # incomplete leftovers: regenerate
            shutil.rmtree(directory)
        generate(settings, directory)
    return directory


class SpeechSynthDataModule(LogMelDataModule):
    """Synthesized keyword spotting; ``generation`` holds the ``SynthSettings`` fields."""

    def __init__(
        self,
        data_dir: str = "data",
        generation: dict[str, Any] | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        patch: int = 4,
        n_mels: int = 40,
        spec_augment: dict[str, int] | None = None,
        seed: int = 0,
    ) -> None:
        self.settings = SynthSettings.from_config(generation)
        self.data_dir = data_dir
        super().__init__(
            num_classes=len(self.settings.class_names()), batch_size=batch_size,
            eval_batch_size=eval_batch_size, patch=patch, n_mels=n_mels,
            spec_augment=spec_augment, seed=seed,
        )  # fmt: skip

    def load_features(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        directory = load_or_generate(self.settings, self.data_dir)
        labels = torch.from_numpy(np.load(directory / "labels.npy"))
        splits = torch.from_numpy(np.load(directory / "splits.npy"))
        feats = torch.from_numpy(cached_log_mel(directory, self.mel))
        return {name: (feats[splits == i], labels[splits == i]) for i, name in enumerate(SPLITS)}


def cached_log_mel(directory: Path, mel: MelConfig) -> np.ndarray:
    """Log-mel of every clip, computed once per front-end setting and kept next to the
    waves, so that each run of a study starts in about a second."""
    key = hashlib.sha256(json.dumps(asdict(mel), sort_keys=True).encode()).hexdigest()[:12]
    path = directory / f"logmel-{key}.npy"
    if path.is_file():
        try:
            return np.load(path)
        except (OSError, ValueError):  # torn file: recompute
            path.unlink(missing_ok=True)
    waves = torch.from_numpy(np.load(directory / "waves.npy"))
    feats = log_mel(waves.float() / 32768.0, mel).numpy()
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}.npy")
    np.save(tmp, feats)
    os.replace(tmp, path)
    return feats
