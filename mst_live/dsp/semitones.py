"""STFT bins gathered into the semitones of the keyboard: where the notes are, whatever the analysis."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ..settings import Settings

LOWEST, HIGHEST = 28, 108  # MIDI notes: E1 to C8


def semitone_bank(settings: Settings) -> np.ndarray:
    """81 x n_bins triangular weights from STFT bins to semitones MIDI 28-108."""
    freqs = np.arange(settings.n_bins) * settings.sample_rate / settings.n_fft
    midi = 69.0 + 12.0 * np.log2(np.maximum(freqs, 1e-3) / 440.0)
    notes = np.arange(LOWEST, HIGHEST + 1, dtype=np.float64)
    return np.maximum(0.0, 1.0 - np.abs(midi[None, :] - notes[:, None])).astype(np.float32)


@lru_cache(maxsize=8)
def _bank(settings: Settings) -> torch.Tensor:
    return torch.from_numpy(semitone_bank(settings))


def semitone_amplitudes(power: torch.Tensor, settings: Settings) -> torch.Tensor:
    """Each semitone's amplitude (81, n) in power spectra (bins, n): the onset clock and the
    palette's match both read a block's notes from this, computed once a block. torch, not numpy,
    for the product: it runs between optimiser steps, and a second thread pool (numpy's BLAS)
    left spinning there slows them."""
    return torch.sqrt(_bank(settings) @ power)
