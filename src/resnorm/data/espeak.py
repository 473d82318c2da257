"""A thin ctypes binding to eSpeak NG, as shipped by the ``espeakng-loader`` wheel.

The wheel carries ``libespeak-ng`` and its voice data, so speech can be synthesized
offline on every install without a system package or a Python extension to build.
Only the few calls the speech generator needs are bound: initialize once per process in
synchronous mode, pick a voice, set rate/pitch/range, synthesize into a callback that
collects int16 samples. ``synthesize_many`` speaks a batch reproducibly in fresh worker
processes (see there why) and resamples it with numpy's FFT.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import numpy as np

from resnorm.data.errors import DataError

AUDIO_OUTPUT_SYNCHRONOUS = 2  # samples come back through the callback; nothing is played
INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit()
POS_CHARACTER = 1
CHARS_UTF8 = 1
PARAMS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}
_EE_OK = 0

# int callback(short *wav, int numsamples, espeak_EVENT *events)
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def _loader() -> ModuleType:
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise DataError(
            "speech synthesis needs the 'espeakng-loader' package: pip install espeakng-loader"
        ) from exc
    return espeakng_loader


class _Engine:
    """The process-wide eSpeak NG state (the library itself is a singleton)."""

    def __init__(self) -> None:
        loader = _loader()
        lib_path, self.data_path = loader.get_library_path(), loader.get_data_path()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as exc:
            raise DataError(f"cannot load eSpeak NG from {lib_path}: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        self.has_rand_seed = hasattr(lib, "espeak_ng_SetRandSeed")
        if self.has_rand_seed:
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed.restype = None
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise DataError(f"eSpeak NG failed to initialize with data at {self.data_path}")
        self.lib, self.sample_rate = lib, rate
        self.chunks: list[np.ndarray] = []
        # The CFUNCTYPE object must outlive every call into the library: keep it on self.
        self._callback = _SYNTH_CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), n: int, _events: int) -> int:  # type: ignore[valid-type]
        if n > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0: go on synthesizing


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def engine() -> _Engine:
    """The initialized engine of this process (initialized on first use)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def sample_rate() -> int:
    return engine().sample_rate


def data_path() -> Path:
    return Path(_loader().get_data_path())


def list_variants() -> list[str]:
    """Names of the voice variants (``m1``, ``f3``, ``klatt``, ...) in the shipped data."""
    return sorted(p.name for p in (data_path() / "voices" / "!v").iterdir() if p.is_file())


def version() -> str:
    """The eSpeak NG wheel's version: part of every cache key built on its output."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("espeakng-loader")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def synthesize(
    text: str,
    voice: str = "en",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Speak ``text``: float32 audio in [-1, 1] and its sample rate (22050 Hz).

    ``voice`` is an eSpeak voice name, optionally with a variant (``'en-us+f2'``);
    ``rate`` is in words per minute (80-450), ``pitch`` and ``pitch_range`` are 0-100.
    ``seed`` fixes eSpeak's internal noise so the same arguments give the same samples.
    """
    eng = engine()
    with eng.lock:
        if eng.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise DataError(f"eSpeak NG has no voice {voice!r} in {eng.data_path}")
        for name, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range)):
            if eng.lib.espeak_SetParameter(PARAMS[name], int(value), 0) != _EE_OK:
                raise ValueError(f"eSpeak NG rejected {name}={value}")
        if eng.has_rand_seed:
            eng.lib.espeak_ng_SetRandSeed(seed)
        eng.chunks = []
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data, len(data))
        err = eng.lib.espeak_Synth(buf, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if err != _EE_OK or eng.lib.espeak_Synchronize() != _EE_OK:
            raise DataError(f"eSpeak NG failed to synthesize {text!r} with voice {voice!r}")
        samples = np.concatenate(eng.chunks) if eng.chunks else np.zeros(0, np.int16)
        eng.chunks = []
    return samples.astype(np.float32) / 32768.0, eng.sample_rate


class Utterance(NamedTuple):
    text: str
    voice: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50


def trim_silence(audio: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Strip the leading and trailing near-silence eSpeak pads every utterance with."""
    loud = np.flatnonzero(np.abs(audio) > threshold * max(float(np.abs(audio).max()), 1e-9))
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio[:0]


def resample_fft(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling by zero-padding to whole seconds and cropping the spectrum
    (numpy only, so that synthesis workers start fast)."""
    if orig_rate == new_rate:
        return audio.astype(np.float32)
    seconds = max(1, -(-len(audio) // orig_rate))
    n, m = seconds * orig_rate, seconds * new_rate
    spectrum = np.fft.rfft(audio.astype(np.float64), n=n)[: min(n, m) // 2 + 1]
    out = np.fft.irfft(spectrum, n=m) * (m / n)
    return out[: round(len(audio) * new_rate / orig_rate)].astype(np.float32)


def _synthesize_chunk(requests: list[Utterance], out_rate: int) -> list[np.ndarray]:
    out = []
    for i, u in enumerate(requests):
        audio, rate = synthesize(u.text, u.voice, u.rate, u.pitch, u.pitch_range, seed=i)
        audio = resample_fft(trim_silence(audio), rate, out_rate)
        out.append(np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16))
    return out


def _spawn_chunk(requests: list[Utterance], out_rate: int) -> list[np.ndarray]:
    """Speak ``requests`` in a fresh interpreter (``python -m resnorm.data.espeak``)."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])  # so the child imports this resnorm
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    payload = json.dumps({"rate": out_rate, "requests": [list(u) for u in requests]})
    proc = subprocess.run(
        [sys.executable, "-m", "resnorm.data.espeak"], input=payload.encode(), env=env,
        capture_output=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise DataError(f"eSpeak NG worker failed (exit {proc.returncode}): {tail[0]}")
    stream = io.BytesIO(proc.stdout)
    lengths, samples = np.load(stream), np.load(stream)
    return np.split(samples, np.cumsum(lengths)[:-1])


def synthesize_many(
    requests: list[Utterance],
    out_rate: int = 16_000,
    chunks: int = 8,
    workers: int | None = None,
) -> list[np.ndarray]:
    """Trimmed int16 audio at ``out_rate`` for each request, reproducible to the byte.

    eSpeak NG keeps synthesis state between utterances (glottal phase, flutter, its
    noise generator) that neither ``espeak_Terminate`` nor a new voice resets, so the
    same request sounds slightly different depending on what the process spoke before.
    Each of ``chunks`` fixed, contiguous slices of the requests is therefore spoken by a
    fresh interpreter: the output depends only on the requests and ``chunks``, not on
    the worker count or on anything this process synthesized earlier.
    """
    if not requests:
        return []
    size = -(-len(requests) // chunks)
    parts = [requests[i : i + size] for i in range(0, len(requests), size)]
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    with ThreadPoolExecutor(max(1, min(workers, len(parts)))) as pool:
        results = list(pool.map(_spawn_chunk, parts, [out_rate] * len(parts)))
    return [audio for part in results for audio in part]


def _worker_main() -> None:
    job = json.loads(sys.stdin.buffer.read())
    audio = _synthesize_chunk([Utterance(*r) for r in job["requests"]], int(job["rate"]))
    lengths = np.array([len(a) for a in audio], dtype=np.int64)
    samples = np.concatenate(audio) if audio else np.zeros(0, np.int16)
    np.save(sys.stdout.buffer, lengths)
    np.save(sys.stdout.buffer, samples)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _worker_main()
