"""Speech tasks: audio front-end against NumPy references, eSpeak synthesis, the
synthesized keyword set (determinism, cache, voice-disjoint splits), the Speech Commands
loader on a tiny fixture in the official layout, and one end-to-end training run."""

from __future__ import annotations

import math
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import rounding_tol
from resnorm.data import espeak
from resnorm.data.audio import (
    MelConfig,
    SpecAugment,
    log_mel,
    mel_filterbank,
    read_wav,
    resample,
)
from resnorm.data.errors import DataError
from resnorm.data.speech_commands import ALL_WORDS, SpeechCommandsDataModule
from resnorm.data.speech_plan import (
    CORE_WORDS,
    SILENCE,
    UNKNOWN,
    SynthSettings,
    plan_clips,
    split_variants,
)
from resnorm.data.speech_synth import CACHE_FILES, SpeechSynthDataModule, load_or_generate

SMALL = {
    "languages": ["en", "en-us"],
    "variants": ["", "m1", "m3", "f1", "f2", "klatt", "croak"],
    "val_variants": 2,
    "test_variants": 2,
    "unknown": True,
    "silence": True,
    "synth_chunks": 4,
}
TINY = {**SMALL, "languages": ["en"], "variants": ["", "m1", "f1", "klatt"], "synth_chunks": 2}
TINY.update(val_variants=1, test_variants=1)


# ---------------------------------------------------------------- NumPy references
def numpy_filterbank(n_freqs: int, n_mels: int, rate: int, f_min: float, f_max: float):
    def mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    step = (mel(f_max) - mel(f_min)) / (n_mels + 1)
    edges = [hz(mel(f_min) + i * step) for i in range(n_mels + 2)]
    fb = np.zeros((n_freqs, n_mels))
    for k in range(n_freqs):
        f = k * (rate / 2) / (n_freqs - 1)
        for m in range(n_mels):
            lo, centre, hi = edges[m], edges[m + 1], edges[m + 2]
            if lo < f <= centre:
                fb[k, m] = (f - lo) / (centre - lo)
            elif centre < f < hi:
                fb[k, m] = (hi - f) / (hi - centre)
    return fb


def numpy_log_mel(x: np.ndarray, cfg: MelConfig) -> np.ndarray:
    pad = cfg.n_fft // 2
    padded = np.pad(x, pad, mode="reflect")
    n_frames = 1 + (len(padded) - cfg.n_fft) // cfg.hop
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.win_length) / cfg.win_length)
    window = np.zeros(cfg.n_fft)
    left = (cfg.n_fft - cfg.win_length) // 2
    window[left : left + cfg.win_length] = hann
    frames = np.stack([padded[t * cfg.hop : t * cfg.hop + cfg.n_fft] for t in range(n_frames)])
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (frames, freqs)
    fb = numpy_filterbank(cfg.n_fft // 2 + 1, cfg.n_mels, cfg.sample_rate, cfg.f_min, 8000.0)
    return np.log(power @ fb + cfg.eps).T  # (mels, frames)


def write_pcm(path: Path, samples: np.ndarray, rate: int = 16000) -> None:
    """Writes with the stdlib directly, independently of resnorm's own writer."""
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.astype("<i2").tobytes())


# ---------------------------------------------------------------- audio front-end
def test_mel_filterbank_matches_numpy_reference() -> None:
    ours = mel_filterbank(257, 40, 16000, f_min=20.0, f_max=8000.0).numpy()
    ref = numpy_filterbank(257, 40, 16000, 20.0, 8000.0)
    np.testing.assert_allclose(ours, ref, **rounding_tol(ref, 8))  # float32 vs float64
    assert (ours.sum(axis=0) > 0).all(), "every mel band must see at least one FFT bin"


def test_log_mel_matches_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(16000)
    cfg = MelConfig()
    ours = log_mel(torch.tensor(x[None], dtype=torch.float32), cfg)[0].numpy()
    ref = numpy_log_mel(x, cfg)
    assert ours.shape == ref.shape == (40, 101)
    # a float32 STFT against a float64 one: rounding of the largest terms (~3 eps of the
    # largest log-mel seen), which the log amplifies for the quietest bins
    np.testing.assert_allclose(ours, ref, **rounding_tol(ref, 256))
    # the 440 Hz tone must dominate the band that contains it
    assert ours.mean(axis=1).argmax() == ref.mean(axis=1).argmax()


def test_resample_keeps_a_tone_and_removes_what_cannot_be_represented() -> None:
    t = torch.arange(22050, dtype=torch.float64) / 22050
    tone = torch.sin(2 * math.pi * 1000 * t)
    out = resample(tone, 22050, 16000)
    expected = torch.sin(2 * math.pi * 1000 * torch.arange(16000, dtype=torch.float64) / 16000)
    assert out.shape == (16000,)
    assert (out - expected).abs().max() < 1e-2
    assert resample(torch.sin(2 * math.pi * 9000 * t), 22050, 16000).abs().max() < 1e-2


def test_spec_augment_masks_bands_reproducibly() -> None:
    x = torch.ones(8, 40, 100)
    a = SpecAugment(time_masks=2, time_width=10, freq_masks=2, freq_width=5, seed=3)
    b = SpecAugment(time_masks=2, time_width=10, freq_masks=2, freq_width=5, seed=3)
    (xa,), (xb,) = a((x,)), b((x,))
    assert torch.equal(xa, xb)
    zero = xa == 0
    assert zero.any() and not zero.all()
    # a masked frame is masked in every band; at most 2 masks of <= 10 frames
    frames_masked = zero.all(dim=1).sum(dim=1)
    assert (frames_masked <= 20).all()


def test_wav_round_trip_with_stdlib_wave(tmp_path: Path) -> None:
    samples = np.array([0, 1, -1, 32767, -32768, 1234, -4321], dtype=np.int16)
    write_pcm(tmp_path / "a.wav", samples, rate=8000)
    audio, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and audio.dtype == np.float32
    np.testing.assert_array_equal(audio, samples / 32768.0)


def test_truncated_or_foreign_wav_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    write_pcm(path, np.zeros(1000, dtype=np.int16))
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(DataError, match="cut.wav.*truncated"):
        read_wav(path)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    with pytest.raises(DataError, match="junk.wav"):
        read_wav(junk)
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(b"\0" * 400)
    with pytest.raises(DataError, match="stereo.wav.*mono"):
        read_wav(stereo)


# ---------------------------------------------------------------- eSpeak NG
def test_espeak_says_yes() -> None:
    audio, rate = espeak.synthesize("yes", voice="en-us", rate=175)
    assert rate == 22050
    assert 0.15 < len(audio) / rate < 1.0
    assert float(np.sqrt(np.mean(audio**2))) > 0.01
    with pytest.raises(DataError, match="no voice"):
        espeak.synthesize("yes", voice="xx-not-a-voice")


def test_synthesize_many_is_independent_of_worker_count() -> None:
    requests = [espeak.Utterance(w, v) for w in ("go", "stop") for v in ("en", "en-us+f2")]
    one = espeak.synthesize_many(requests, chunks=2, workers=1)
    two = espeak.synthesize_many(requests, chunks=2, workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert all(0.1 * 16000 < len(a) < 16000 for a in one)


# ---------------------------------------------------------------- speech_synth
def test_default_voice_variants_are_disjoint_across_splits() -> None:
    settings = SynthSettings()
    parts = split_variants(settings)
    sets = {k: set(v) for k, v in parts.items()}
    assert not (
        sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"]
    )
    assert set().union(*sets.values()) == set(settings.all_variants())
    assert len(sets["test"]) == settings.test_variants and len(sets["val"]) == settings.val_variants
    plan = plan_clips(settings)
    for a in range(3):
        for b in range(a + 1, 3):
            va = set(plan["voice"][plan["split"] == a])
            assert va.isdisjoint(plan["voice"][plan["split"] == b])


def test_generation_is_byte_identical_and_cached(tmp_path: Path) -> None:
    settings = SynthSettings.from_config(TINY)
    first = load_or_generate(settings, tmp_path / "a")
    second = load_or_generate(settings, tmp_path / "b")
    assert first.name == second.name == settings.key()
    for name in CACHE_FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    # cache hit: nothing is rewritten
    stamps = {n: (first / n).stat().st_mtime_ns for n in CACHE_FILES}
    t0 = time.perf_counter()
    assert load_or_generate(settings, tmp_path / "a") == first
    assert time.perf_counter() - t0 < 1.0
    assert stamps == {n: (first / n).stat().st_mtime_ns for n in CACHE_FILES}
    # another setting is another data set
    other = SynthSettings.from_config({**TINY, "gen_seed": 1})
    assert other.key() != settings.key()

    waves, labels = np.load(first / "waves.npy"), np.load(first / "labels.npy")
    voices, splits = np.load(first / "voices.npy"), np.load(first / "splits.npy")
    assert waves.shape == (4 * 1 * 12, 16000) and waves.dtype == np.int16
    assert sorted(np.unique(labels)) == list(range(12))
    peaks = np.abs(waves).max(axis=1)
    assert (peaks > 0.05 * 32767).all(), "every clip, silence included, carries signal"
    for a in range(3):
        for b in range(a + 1, 3):
            assert set(voices[splits == a]).isdisjoint(voices[splits == b])


def test_speech_synth_datamodule_spec_and_batches(tmp_path: Path) -> None:
    dm = SpeechSynthDataModule(data_dir=str(tmp_path), generation=SMALL, batch_size=16, patch=4)
    dm.setup("fit")
    spec = dm.spec
    assert spec.kind == "classification" and spec.embed == "spectrogram"
    assert spec.num_classes == len(CORE_WORDS) + 2 == 12
    assert spec.embed_args == {"n_mels": 40, "frames": 100, "patch": 4}
    assert spec.chance == pytest.approx(1 / 12)
    loader = dm.train_dataloader()
    assert loader.transform is None  # no SpecAugment unless asked for
    x, y = next(iter(loader))
    assert x.shape == (16, 40, 100) and y.shape == (16,)
    dm.spec_augment = {"time_masks": 2, "time_width": 10, "freq_masks": 0, "freq_width": 5}
    masked, _ = next(iter(dm.train_dataloader()))
    assert (masked == 0).all(dim=1).any(), "a time mask zeroes whole frames"
    sizes = {k: len(v[1]) for k, v in dm.splits.items()}
    assert sizes == {"train": 3 * 2 * 12, "val": 2 * 2 * 12, "test": 2 * 2 * 12}
    train_x = dm.splits["train"][0]
    assert train_x.mean(dim=(0, 2)).abs().max() < 1e-3  # standardized on train
    assert SynthSettings.from_config(SMALL).class_names()[-2:] == [UNKNOWN, SILENCE]


def test_unknown_generation_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown keys.*colour"):
        SynthSettings.from_config({"colour": "pink"})


# ---------------------------------------------------------------- Speech Commands
TONES = {"train": 300.0, "val": 1500.0, "test": 5000.0}


def write_speech_commands(root: Path) -> None:
    """Three speakers per word: the first trains, the second validates, the third tests.
    Each split's clips are a tone of its own pitch, so features reveal their split."""
    root.mkdir(parents=True)
    t = np.arange(8000) / 16000  # half-second clips: the loader pads them to 1 s
    lists = {"val": [], "test": []}
    for word in ALL_WORDS:
        (root / word).mkdir()
        for speaker, split in zip(("aa11", "bb22", "cc33"), ("train", "val", "test"), strict=True):
            name = f"{speaker}_nohash_0.wav"
            write_pcm(
                root / word / name, (8000 * np.sin(2 * np.pi * TONES[split] * t)).astype(np.int16)
            )
            if split != "train":
                lists[split].append(f"{word}/{name}")
    (root / "validation_list.txt").write_text("\n".join(lists["val"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    (root / "not_a_keyword").mkdir()  # a folder outside the official words
    write_pcm(root / "not_a_keyword" / "dd44_nohash_0.wav", np.zeros(100, dtype=np.int16))
    (root / "_background_noise_").mkdir()
    rng = np.random.default_rng(0)
    for name in ("white_noise.wav", "pink_noise.wav"):
        write_pcm(
            root / "_background_noise_" / name, (3000 * rng.standard_normal(48000)).astype(np.int16)
        )


@pytest.fixture
def speech_commands_dir(tmp_path: Path) -> Path:
    write_speech_commands(tmp_path / "speech_commands_v2")
    return tmp_path


def dominant_band(feats: torch.Tensor) -> int:
    return int(feats.float().mean(dim=(0, 2)).argmax())


def test_speech_commands_35_follows_the_split_lists(speech_commands_dir: Path) -> None:
    dm = SpeechCommandsDataModule(data_dir=str(speech_commands_dir), classes=35)
    raw = dm.load_features()
    for split, (x, y) in raw.items():
        assert x.shape == (35, 40, 101)
        assert sorted(y.tolist()) == list(range(35)), split
    bands = {split: dominant_band(x) for split, (x, _) in raw.items()}
    assert bands["train"] < bands["val"] < bands["test"], bands
    dm.setup("fit")
    assert dm.spec.num_classes == 35 and dm.spec.chance == pytest.approx(1 / 35)
    cached = list((speech_commands_dir / "cache").glob("speech_commands_v2-35-*.pt"))
    assert len(cached) == 1
    again = SpeechCommandsDataModule(data_dir=str(speech_commands_dir), classes=35).load_features()
    assert all(torch.equal(again[s][0], raw[s][0]) for s in raw)


def test_speech_commands_12_has_unknown_and_silence(speech_commands_dir: Path) -> None:
    dm = SpeechCommandsDataModule(data_dir=str(speech_commands_dir), classes=12)
    raw = dm.load_features()
    for split, (_, y) in raw.items():
        counts = torch.bincount(y, minlength=12).tolist()
        # 10 core words once each, then ceil(0.1 * 10) unknown and silence clips
        assert counts == [1] * 10 + [1, 1], split
    bands = {s: dominant_band(x[y < 10]) for s, (x, y) in raw.items()}
    assert bands["train"] < bands["val"] < bands["test"], bands
    silence = raw["train"][0][raw["train"][1] == 11]
    assert silence.float().std() > 0  # noise, not digital silence
    dm.setup("fit")
    assert dm.spec.num_classes == 12


def test_speech_commands_missing_directory_says_how_to_get_it(tmp_path: Path) -> None:
    dm = SpeechCommandsDataModule(data_dir=str(tmp_path / "nowhere"), classes=12)
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere" / "speech_commands_v2") in message
    assert "speech_commands_v0.02.tar.gz" in message


def test_speech_commands_missing_listed_file_is_named(speech_commands_dir: Path) -> None:
    root = speech_commands_dir / "speech_commands_v2"
    (root / "yes" / "cc33_nohash_0.wav").unlink()
    with pytest.raises(DataError, match="yes/cc33_nohash_0.wav"):
        SpeechCommandsDataModule(data_dir=str(speech_commands_dir), classes=35).load_features()


# ---------------------------------------------------------------- end to end
@pytest.mark.slow
def test_speech_synth_trains_end_to_end(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from resnorm.paths import conf_dir
    from resnorm.training.run import run_job

    overrides = [
        "task=speech_synth", "trainer.max_steps=5", "task.val_every=5", f"task.data_dir={tmp_path}",
        "logger=none", "task.datamodule.batch_size=16",
        "task.datamodule.generation.languages=[en,en-us]",
        "task.datamodule.generation.variants=[m1,m3,f1,f2,klatt,croak]",
        "task.datamodule.generation.val_variants=2", "task.datamodule.generation.test_variants=2",
    ]  # fmt: skip
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    summary = run_job(cfg, tmp_path / "run")
    assert summary["status"] == "completed"
    assert summary["steps"] == 5
    assert {"test/acc", "test/f1_macro"} <= set(summary["metrics"])
    assert summary["chance"] == pytest.approx(0.1)
    assert list((tmp_path / "speech_synth").iterdir()), "the generated set is cached in data_dir"
