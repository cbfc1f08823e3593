"""STFT and inverse with librosa's conventions (centered, zero padded, periodic Hann)."""

from __future__ import annotations

import numpy as np
import scipy.fft

from ..errors import ParameterError


def hann(n_fft: int, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Periodic Hann window, as scipy.signal.get_window('hann', n_fft) and librosa use."""
    n = np.arange(n_fft, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)).astype(dtype)


def window_sumsquare(window: np.ndarray, n_frames: int, hop_length: int, *, start: int = 0,
                     length: int | None = None) -> np.ndarray:
    """Sum of squared, shifted windows of frames 0 .. n_frames-1 over the padded signal (the OLA
    normaliser), from sample ``start`` on, ``length`` samples (to the last frame's end by default):
    a streaming overlap-add asks for the span under its newest frames."""
    n_fft = window.size
    end = n_fft + hop_length * (n_frames - 1) if length is None else start + length
    out = np.zeros(max(0, end - start), dtype=np.float64)
    w2 = window.astype(np.float64) ** 2
    for t in range(max(0, (start - n_fft) // hop_length + 1), min(n_frames, -(-end // hop_length))):
        a, b = max(t * hop_length, start), min(t * hop_length + n_fft, end)
        out[a - start : b - start] += w2[a - t * hop_length : b - t * hop_length]
    return out


def check_magnitudes(S: np.ndarray, *, n_bins: int | None = None, min_frames: int = 1) -> np.ndarray:
    """The one guard for magnitude spectrograms (bins, frames): real, finite, non-negative.

    Returns float64 input as float64 and anything else as float32.
    """
    S = np.asarray(S)
    if S.ndim != 2 or (n_bins is not None and S.shape[0] != n_bins):
        want = f"({n_bins}, frames)" if n_bins is not None else "2-D (bins, frames)"
        raise ParameterError(f"magnitudes must have shape {want}, got {S.shape}")
    if S.shape[0] < 9 or S.shape[1] < min_frames:
        raise ParameterError(f"magnitudes have shape {S.shape}: need at least 9 bins and {min_frames} frame(s)")
    if np.iscomplexobj(S):
        raise ParameterError("magnitudes must be real, not complex")
    if not np.all(np.isfinite(S)):
        raise ParameterError("magnitudes contain NaN or infinite values")
    if np.any(S < 0):
        raise ParameterError("magnitudes contain negative values")
    return S.astype(np.float64 if S.dtype == np.float64 else np.float32, copy=False)


def n_frames_for(length: int, hop_length: int) -> int:
    """Frames a centered STFT of ``length`` samples has."""
    return 1 + length // hop_length


def stft(y: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """Complex STFT, shape (n_fft // 2 + 1, frames), centered with zero padding."""
    if y.ndim != 1:
        raise ParameterError(f"stft expects mono audio, got shape {y.shape}")
    dtype = np.float32 if y.dtype != np.float64 else np.float64
    pad = n_fft // 2
    padded = np.zeros(y.size + 2 * pad, dtype=dtype)
    padded[pad : pad + y.size] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    win = hann(n_fft, dtype)
    return scipy.fft.rfft(frames * win, axis=-1, workers=-1).T


def istft(spec: np.ndarray, *, hop_length: int, length: int | None = None) -> np.ndarray:
    """Inverse of `stft` by windowed overlap-add, normalised by the window sum-square."""
    n_bins, n_frames = spec.shape
    n_fft = 2 * (n_bins - 1)
    real = np.float64 if spec.dtype == np.complex128 else np.float32
    win = hann(n_fft, real)
    frames = scipy.fft.irfft(spec.T, n=n_fft, axis=-1, workers=-1).astype(real) * win
    out = np.zeros(n_fft + hop_length * (n_frames - 1), dtype=real)
    for t in range(n_frames):
        out[t * hop_length : t * hop_length + n_fft] += frames[t]
    wss = window_sumsquare(win, n_frames, hop_length)
    good = wss > np.finfo(real).tiny
    out[good] /= wss[good]
    pad = n_fft // 2
    out = out[pad:]
    if length is None:
        return out[: hop_length * (n_frames - 1)].copy()
    res = np.zeros(length, dtype=real)
    k = min(length, out.size)
    res[:k] = out[:k]
    return res


class StreamingSTFT:
    """Centered STFT fed in pieces: the frames of all pieces equal `stft` of the whole signal.

    Holds at most one frame of samples, so a track of any length streams through bounded memory.
    """

    def __init__(self, *, n_fft: int, hop_length: int) -> None:
        self.n_fft = n_fft
        self.hop_length = hop_length
        self._win = hann(n_fft, np.float32)
        self._buf = np.zeros(n_fft // 2, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Complex frames (bins, n) completed by these samples; n may be 0."""
        buf = np.concatenate([self._buf, np.asarray(samples, dtype=np.float32)])
        n = 0 if buf.size < self.n_fft else 1 + (buf.size - self.n_fft) // self.hop_length
        if n == 0:
            self._buf = buf
            return np.zeros((self.n_fft // 2 + 1, 0), dtype=np.complex64)
        frames = np.lib.stride_tricks.sliding_window_view(buf, self.n_fft)[:: self.hop_length][:n]
        spec = scipy.fft.rfft(frames * self._win, axis=-1, workers=-1).T
        self._buf = buf[n * self.hop_length :].copy()
        return spec

    def flush(self) -> np.ndarray:
        """The last frames (the centered STFT's end padding); the stream starts over afterwards."""
        spec = self.push(np.zeros(self.n_fft // 2, dtype=np.float32))
        self._buf = np.zeros(self.n_fft // 2, dtype=np.float32)
        return spec
