"""What the quality benchmark measures, and the trivial baselines it measures them on.

None of these is what the engine optimises: the style measures use networks with other seeds,
filter counts and widths, and two of them (the correlation measure and everything on
level-normalised log-mel) are built so that a gain barely moves them. A static EQ still moves the
correlation measure, so the quality tables show what a whole-clip static EQ reaches. Content is
judged with chroma, onsets and a note transcription (basic-pitch's own model), never with the
engine's network.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from dataclasses import dataclass
from functools import cache

import librosa
import numpy as np
import soundfile as sf
import torch
from yardstick import Yardstick, network_features

from mst_live import FeatureNet, Settings
from mst_live.dsp.stft import istft, stft
from mst_live.latency import MODES

SR = 22050
N_FFT, HOP = 2048, 512
EPS = 1e-8


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)) + 1e-20))


def fit(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` cut or zero-padded to ``n`` samples."""
    return y[:n] if y.size >= n else np.concatenate([y, np.zeros(n - y.size, y.dtype)])


# --------------------------------------------------------------------------- baselines
def level_match(x: np.ndarray, style: np.ndarray) -> np.ndarray:
    """The input at the style's RMS level."""
    return (x * rms(style) / rms(x)).astype(np.float32)


def _spec(y: np.ndarray) -> np.ndarray:
    return stft(np.asarray(y, np.float32), n_fft=N_FFT, hop_length=HOP)


def static_eq(x: np.ndarray, style: np.ndarray) -> np.ndarray:
    """The input through one fixed EQ: each bin's long-term power moved to the style's."""
    X, S = _spec(x), _spec(style)
    gain = np.sqrt((np.mean(np.abs(S) ** 2, axis=1) + 1e-12) / (np.mean(np.abs(X) ** 2, axis=1) + 1e-12))
    return istft(X * gain[:, None], hop_length=HOP, length=x.size).astype(np.float32)


def mean_spread_match(x: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Each bin's log-magnitude mean and spread moved to the style's, the input's phase kept."""
    X, S = _spec(x), _spec(style)
    lx, ls = np.log1p(np.abs(X)), np.log1p(np.abs(S))
    mx, sx = lx.mean(axis=1, keepdims=True), lx.std(axis=1, keepdims=True) + 1e-6
    ms, ss = ls.mean(axis=1, keepdims=True), ls.std(axis=1, keepdims=True)
    mag = np.expm1(np.maximum((lx - mx) / sx * ss + ms, 0.0))
    return istft(mag * np.exp(1j * np.angle(X)), hop_length=HOP, length=x.size).astype(np.float32)


def half_mix(x: np.ndarray, style_excerpt: np.ndarray) -> np.ndarray:
    """Half the input and half a held-out excerpt of the style, each at its own level."""
    return (0.5 * x + 0.5 * fit(style_excerpt, x.size)).astype(np.float32)


# --------------------------------------------------------------------------- style
class StyleMeasures:
    """Two held-out networks: the raw Gram gap (level and long-term spectrum weigh heavily in
    it), and a correlation measure that a gain barely moves.

    The correlation measure is the centred, per-filter-normalised Gram (the filters' correlation
    matrix over time) of a small network with yet another seed and width, compared with windows
    of the style as long as the clip: centring removes a constant in a filter's response and
    normalising its scale. The filters are rectified, though, and a static EQ changes which of
    them fire: on the quality benchmark's pairs it closes 0.06-0.22 of this gap, a level match
    at most 0.04."""

    def __init__(self, settings: Settings, style: np.ndarray, clip_seconds: float) -> None:
        self.yardstick = Yardstick(settings)
        self.style_gram = self.yardstick.gram(style)
        small = Settings(sample_rate=settings.sample_rate, n_fft=settings.n_fft, hop_length=settings.hop_length,
                         n_filters=512, width=5, seed=settings.seed + 7_654_321, network="dense")
        self.small = small
        self.net = FeatureNet(small)
        n = int(clip_seconds * settings.sample_rate)
        self.windows = [self._corr(style[i : i + n]) for i in range(0, style.size - n + 1, n // 2)]

    def _corr(self, y: np.ndarray) -> torch.Tensor:
        f = network_features(y, self.net)
        f = f - f.mean(dim=1, keepdim=True)
        f = f / (f.norm(dim=1, keepdim=True) + 1e-9)
        return f @ f.T

    def corr_distance(self, y: np.ndarray) -> float:
        r = self._corr(y)
        return float(np.mean([float(torch.linalg.norm(r - w)) for w in self.windows]))

    def gram_gap(self, out: np.ndarray, content: np.ndarray) -> float:
        return self.yardstick.style_gap_closed(out, content, self.style_gram)

    def corr_gap(self, out: np.ndarray, content: np.ndarray) -> float:
        """1 − d(out) / d(content): the share of the distance to the style's windows closed."""
        return 1.0 - self.corr_distance(out) / self.corr_distance(content)


# --------------------------------------------------------------------------- content
def chroma_cosine(out: np.ndarray, ref: np.ndarray) -> float:
    """Mean frame-wise cosine of CQT chroma, over frames where the reference sounds."""
    a = librosa.feature.chroma_cqt(y=ref, sr=SR, hop_length=HOP)
    b = librosa.feature.chroma_cqt(y=fit(out, ref.size), sr=SR, hop_length=HOP)
    n = min(a.shape[1], b.shape[1])
    a, b = a[:, :n], b[:, :n]
    cos = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + EPS)
    loud = librosa.feature.rms(y=ref, hop_length=HOP)[0][:n]
    keep = loud > 0.05 * loud.max()
    return float(cos[keep].mean())


def onset_correlation(out: np.ndarray, ref: np.ndarray) -> float:
    a = librosa.onset.onset_strength(y=ref, sr=SR, hop_length=HOP)
    b = librosa.onset.onset_strength(y=fit(out, ref.size), sr=SR, hop_length=HOP)
    n = min(a.size, b.size)
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


@cache
def _pitch_model():
    logging.getLogger().setLevel(logging.ERROR)  # basic-pitch warns about backends it does not use
    from basic_pitch import ICASSP_2022_MODEL_PATH
    from basic_pitch.inference import Model

    return Model(ICASSP_2022_MODEL_PATH)


def transcribe(y: np.ndarray) -> np.ndarray:
    """Notes as rows (onset s, offset s, MIDI pitch) by basic-pitch (its ONNX model)."""
    from basic_pitch.inference import predict

    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        sf.write(f.name, y, SR)
        with contextlib.redirect_stdout(io.StringIO()):
            _, _, notes = predict(f.name, _pitch_model())
    return np.array([(n[0], n[1], n[2]) for n in notes], dtype=np.float64).reshape(-1, 3)


def onset_f1(out_notes: np.ndarray, ref_notes: np.ndarray) -> float:
    """Note-onset F1 (pitch and onset within 50 ms), the output's notes against the input's."""
    import mir_eval

    if len(ref_notes) == 0 or len(out_notes) == 0:
        return 0.0

    def hz(p: np.ndarray) -> np.ndarray:
        return 440.0 * 2 ** ((p - 69) / 12)

    _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_notes[:, :2], hz(ref_notes[:, 2]), out_notes[:, :2], hz(out_notes[:, 2]), offset_ratio=None)
    return float(f1)


# --------------------------------------------------------------------------- artefacts
def flatness(y: np.ndarray) -> float:
    """Median frame-wise spectral flatness over frames that sound: high means noise-like.

    Power below -80 dB of the clip's loudest bin counts as that floor: dust far under anything
    audible (a codec's empty top octave, say) must not decide the score, a hiss one can hear does.
    """
    p = np.abs(_spec(y)) ** 2
    p = np.maximum(p, 1e-8 * max(p.max(), 1e-20))
    f = np.exp(np.mean(np.log(p), axis=0)) / np.mean(p, axis=0)
    loud = p.sum(axis=0)
    keep = loud > 0.0025 * loud.max()  # frames within 26 dB of the loudest
    return float(np.median(f[keep]))


def flutter(y: np.ndarray, *, block_frames: int = MODES["normal"].block_frames) -> float:
    """How much more the level jumps at one position of the engine's block cycle than typically:
    mean |Δ log frame energy| by position in the cycle, max over median (≈ 1.2 for music that
    knows nothing of blocks)."""
    e = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)[0]
    d = np.abs(np.diff(np.log(e + 1e-4)))
    d = d[: d.size // block_frames * block_frames].reshape(-1, block_frames).mean(axis=0)
    return float(d.max() / (np.median(d) + EPS))


def clicks_per_minute(y: np.ndarray) -> float:
    """2 ms windows whose high-passed energy is 30x the median of the 200 ms around them."""
    hp = np.diff(y.astype(np.float64))
    w = int(0.002 * SR)
    e = hp[: hp.size // w * w].reshape(-1, w).var(axis=1)
    k = 50  # windows each side
    if e.size < 2 * k + 1:
        return 0.0
    pad = np.pad(e, k, mode="edge")
    local = np.median(np.lib.stride_tricks.sliding_window_view(pad, 2 * k + 1), axis=1)
    floor = 1e-9 + 1e-4 * e.max()
    hits = (e > 30 * (local + floor)).sum()
    return float(hits / (y.size / SR / 60))


def clipped(y: np.ndarray) -> float:
    return float(np.mean(np.abs(y) >= 0.999))


# --------------------------------------------------------------------------- known answers
def _norm_logmel(y: np.ndarray) -> np.ndarray:
    m = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=96)
    return 10 * np.log10(m / (m.mean() + EPS) + 1e-6)


def logmel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """RMS difference in dB of level-normalised log-mel spectrograms, frame by frame."""
    n = min(a.size, b.size)
    A, B = _norm_logmel(a[:n]), _norm_logmel(b[:n])
    return float(np.sqrt(np.mean((A - B) ** 2)))


def _mfcc_cov(y: np.ndarray) -> np.ndarray:
    m = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20, n_fft=N_FFT, hop_length=HOP)[1:]  # c0 is level
    return np.cov(np.vstack([m, librosa.feature.delta(m)]))


def mfcc_cov_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frobenius distance between the covariances of MFCC (without c0) and their deltas."""
    return float(np.linalg.norm(_mfcc_cov(a) - _mfcc_cov(b)))


@dataclass
class Row:
    """One output's scores; what does not apply stays NaN."""

    name: str
    gram: float = float("nan")
    corr: float = float("nan")
    chroma: float = float("nan")
    onset: float = float("nan")
    f1: float = float("nan")
    flat_excess: float = float("nan")
    flutter: float = float("nan")
    clicks: float = float("nan")
    clipped: float = float("nan")
