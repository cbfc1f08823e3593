"""STFT bins gathered into mel bands: the ear's resolution, coarse where it hears coarsely."""

from __future__ import annotations

import numpy as np

from ..settings import Settings

_LINEAR_TO = 1000.0  # Hz: the (Slaney) mel scale is linear below this, logarithmic above
_LINEAR_STEP = 200.0 / 3.0  # Hz per mel below it
_LOG_STEP = np.log(6.4) / 27.0  # log-Hz per mel above it


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, np.float64)
    low = hz / _LINEAR_STEP
    high = _LINEAR_TO / _LINEAR_STEP + np.log(np.maximum(hz, 1e-12) / _LINEAR_TO) / _LOG_STEP
    return np.where(hz >= _LINEAR_TO, high, low)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    edge = _LINEAR_TO / _LINEAR_STEP
    return np.where(mel >= edge, _LINEAR_TO * np.exp(_LOG_STEP * (mel - edge)), _LINEAR_STEP * mel)


def mel_density(n_bins: int, sample_rate: int) -> np.ndarray:
    """Each STFT bin's weight by the mel scale's density at its frequency (as flat below 1 kHz,
    as 1/f above, where the scale is logarithmic), summing to 1: each band of hearing counts once."""
    f = np.arange(n_bins) * (sample_rate / 2.0) / (n_bins - 1)
    w = _LINEAR_TO / np.maximum(f, _LINEAR_TO)
    return w / w.sum()


def mel_bank(settings: Settings, n_bands: int) -> np.ndarray:
    """``n_bands`` x n_bins triangular weights (peak 1) from 0 Hz to Nyquist: librosa's
    `filters.mel` with ``norm=None``, which the tests check it against."""
    freqs = np.arange(settings.n_bins) * settings.sample_rate / settings.n_fft
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(settings.sample_rate / 2.0), n_bands + 2))
    width = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    rise = -ramps[:-2] / width[:-1, None]
    fall = ramps[2:] / width[1:, None]
    return np.maximum(0.0, np.minimum(rise, fall)).astype(np.float32)
