"""The audio front-end shared by the speech tasks: WAV in, log-mel spectrograms out.

Written without torchaudio (in maintenance, and it pins old torch): WAVs are read with
the stdlib ``wave`` module, resampling is an FFT in torch, and the log-mel is
``torch.stft`` times a triangular mel filterbank built here on the HTK mel scale
(``mel = 2595·log10(1 + f/700)``, unnormalised triangles of peak 1), as in the
HTK book and Kaldi. SpecAugment (Park et al. 2019) masks are drawn per training batch.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from resnorm.data.errors import DataError
from resnorm.data.loaders import TensorLoader
from resnorm.data.spec import TaskSpec

SAMPLE_RATE = 16_000


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """16-bit PCM mono WAV -> (float32 samples in [-1, 1), sample rate)."""
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate, n = (
                f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            )  # fmt: skip
            raw = f.readframes(n)
    except (wave.Error, EOFError, OSError) as exc:
        raise DataError(f"{path}: not a readable WAV file ({exc})") from exc
    if width != 2 or channels != 1:
        raise DataError(
            f"{path}: expected 16-bit PCM mono, found {8 * width}-bit with {channels} channels"
        )
    if len(raw) != n * width:
        raise DataError(f"{path}: truncated WAV, header says {n} samples but holds {len(raw) // 2}")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0, rate


def resample(audio: torch.Tensor, orig_rate: int, new_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Band-limited (FFT) resampling along the last axis, batched: (..., n) -> (..., m).

    Keeps the spectrum below the lower Nyquist frequency and nothing above, which is
    the ideal anti-aliasing filter for clips padded with silence (no wrap-around).
    ``m = round(n · new_rate / orig_rate)``.
    """
    if orig_rate == new_rate:
        return audio.float()
    n = audio.shape[-1]
    m = round(n * new_rate / orig_rate)
    spectrum = torch.fft.rfft(audio.double(), dim=-1)
    keep = min(n, m) // 2 + 1
    spectrum = spectrum[..., :keep]
    return (torch.fft.irfft(spectrum, n=m, dim=-1) * (m / n)).float()


def fit_length(audio: np.ndarray, length: int = SAMPLE_RATE) -> np.ndarray:
    """Zero-pad at the end or crop the end so that every clip lasts exactly ``length``."""
    if len(audio) >= length:
        return audio[:length]
    return np.pad(audio, (0, length - len(audio)))


def hz_to_mel(f: torch.Tensor | float) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(
    n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 20.0, f_max: float | None = None
) -> torch.Tensor:
    """(n_freqs, n_mels) triangles, evenly spaced on the HTK mel scale, peak 1 at centres."""
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"mel range [{f_min}, {f_max}] Hz must lie in [0, {sample_rate / 2}]")
    freqs = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)
    mels = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    edges = mel_to_hz(mels)
    lo, centre, hi = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lo) / (centre - lo)
    falling = (hi - freqs[:, None]) / (hi - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


@dataclass(frozen=True)
class MelConfig:
    """Keyword-spotting defaults: 30 ms Hann windows every 10 ms, 40 mel bands."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 480
    hop: int = 160
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float | None = None
    eps: float = 1e-6

    def frames(self, n_samples: int = SAMPLE_RATE) -> int:
        return 1 + n_samples // self.hop  # centred frames


def log_mel(waves: torch.Tensor, cfg: MelConfig = MelConfig(), chunk: int = 1024) -> torch.Tensor:
    """(B, samples) -> (B, n_mels, frames): log of the mel-weighted power spectrum.

    Frames are centred (reflect-padded by n_fft/2) so a 1 s clip gives 101 frames.
    """
    window = torch.hann_window(cfg.win_length, periodic=True, device=waves.device)
    fb = mel_filterbank(cfg.n_fft // 2 + 1, cfg.n_mels, cfg.sample_rate, cfg.f_min, cfg.f_max)
    fb = fb.to(waves.device)
    out = []
    for part in waves.float().split(chunk):
        spec = torch.stft(
            part, cfg.n_fft, hop_length=cfg.hop, win_length=cfg.win_length, window=window,
            center=True, pad_mode="reflect", return_complex=True,
        )  # fmt: skip
        power = spec.real**2 + spec.imag**2  # (B, freqs, frames)
        out.append(torch.log(torch.einsum("bft,fm->bmt", power, fb) + cfg.eps))
    return torch.cat(out) if out else waves.new_zeros(0, cfg.n_mels, cfg.frames(waves.shape[-1]))


def crop_frames(feats: torch.Tensor, patch: int) -> torch.Tensor:
    """Drop trailing frames so that the time-patch size divides the frame count."""
    frames = feats.shape[-1] - feats.shape[-1] % patch
    if frames == 0:
        raise ValueError(f"task.patch={patch} is longer than the {feats.shape[-1]} frames")
    return feats[..., :frames]


def standardize(
    splits: dict[str, torch.Tensor], reference: str = "train"
) -> dict[str, torch.Tensor]:
    """Per-mel-band mean/std from the training split only, applied to every split."""
    ref = splits[reference].float()
    mean = ref.mean(dim=(0, 2), keepdim=True)
    std = ref.std(dim=(0, 2), keepdim=True).clamp_min(1e-5)
    return {k: ((v.float() - mean) / std).contiguous() for k, v in splits.items()}


class SpecAugment:
    """Per-batch time and frequency masks (set to 0, the mean of standardized features).

    Used as a ``TensorLoader`` transform; masks come from a private generator seeded by
    the run seed, so two runs with the same seed see the same masks.
    """

    def __init__(
        self,
        time_masks: int = 2,
        time_width: int = 10,
        freq_masks: int = 2,
        freq_width: int = 5,
        seed: int = 0,
    ) -> None:
        self.time_masks, self.time_width = time_masks, time_width
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.generator = torch.Generator().manual_seed(seed)

    def _mask(self, batch: int, size: int, count: int, width: int) -> torch.Tensor:
        """(batch, size) bool: ``count`` bands of width uniform in [0, width] per example."""
        g = self.generator
        widths = torch.randint(0, width + 1, (batch, count, 1), generator=g)
        starts = (torch.rand(batch, count, 1, generator=g) * (size - widths + 1)).long()
        pos = torch.arange(size)
        return ((pos >= starts) & (pos < starts + widths)).any(dim=1)

    def __call__(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x, *rest = batch
        b, n_mels, frames = x.shape
        masked = torch.zeros(b, n_mels, frames, dtype=torch.bool)
        if self.time_masks and self.time_width:
            masked |= self._mask(b, frames, self.time_masks, self.time_width)[:, None, :]
        if self.freq_masks and self.freq_width:
            masked |= self._mask(b, n_mels, self.freq_masks, self.freq_width)[:, :, None]
        return (x.masked_fill(masked.to(x.device), 0.0), *rest)


class LogMelDataModule(pl.LightningDataModule):
    """What the speech tasks share: standardized log-mel splits held in memory, fed by
    ``TensorLoader``s, with optional SpecAugment on each training batch.

    Subclasses implement ``load_features`` -> {split: (log-mel (N, n_mels, frames), labels)}.
    ``spec_augment`` holds ``SpecAugment``'s arguments; None or zero masks turn it off.
    ``spec.chance`` is the majority-class frequency of the test split.
    """

    def __init__(
        self,
        num_classes: int,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        patch: int = 4,
        n_mels: int = 40,
        spec_augment: dict[str, int] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.mel = MelConfig(n_mels=n_mels)
        frames = self.mel.frames() - self.mel.frames() % patch
        if patch < 1 or frames == 0:
            raise ValueError(f"task.patch={patch} must be in [1, {self.mel.frames()}]")
        self.batch_size, self.eval_batch_size, self.patch = batch_size, eval_batch_size, patch
        self.spec_augment, self.seed = spec_augment, seed
        self.spec = TaskSpec(
            kind="classification",
            embed="spectrogram",
            embed_args={"n_mels": n_mels, "frames": frames, "patch": patch},
            num_classes=num_classes,
            pool="cls",
            chance=1.0 / num_classes,
        )
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def load_features(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        raw = self.load_features()
        feats = standardize({k: crop_frames(x, self.patch) for k, (x, _) in raw.items()})
        self.splits = {k: (feats[k], raw[k][1].long()) for k in raw}
        test_labels = self.splits["test"][1]
        if len(test_labels):
            top = torch.bincount(test_labels, minlength=self.spec.num_classes).max().item()
            self.spec = replace(self.spec, chance=top / len(test_labels))

    def train_dataloader(self) -> TensorLoader:
        masks = self.spec_augment or {}
        on = masks.get("time_masks", 0) or masks.get("freq_masks", 0)
        augment = SpecAugment(**masks, seed=self.seed) if on else None
        return TensorLoader(
            *self.splits["train"], batch_size=self.batch_size, shuffle=True, seed=self.seed,
            drop_last=True, transform=augment,
        )  # fmt: skip

    def val_dataloader(self) -> TensorLoader:
        return TensorLoader(*self.splits["val"], batch_size=self.eval_batch_size)

    def test_dataloader(self) -> TensorLoader:
        return TensorLoader(*self.splits["test"], batch_size=self.eval_batch_size)
