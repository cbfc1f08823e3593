"""Each frame's level as the first stage left it: the optimiser reshapes a frame's spectrum, it
does not move the frame's level from one frame to the next.

Why: the optimiser's gains move each frame's overall level a little, differently from frame to
frame (about 1 dB). A spectral flux in dB (an onset detector, and the ear's sense of attack)
hears that as attacks that were not played, and the played ones blur. So each frame's mean
log-gain over frequency is replaced by its running average over the last ``seconds``: the
optimiser's slower level changes stay. Each frequency counts as much as the mel scale's density
there (flat to 1 kHz, then falling as 1/f), so that each band of hearing counts once, not the
many quiet bins at the top. It holds the optimiser's change only, not the first stage's: that
map is level-dependent by design (each bin's spread moved to the style's), and held to the
input, a quiet band's raise shrinking under a transient lifts the whole frame, loud partials
included, by several dB: a click (docs/design-notes.md).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import check_range
from .mel import mel_density

EPS = 1e-6  # magnitudes this small count as silence in both signals: their gain is 0


class FrameLevel:
    """Reshaped magnitude frames in, each frame's level change over the frames before reshaping smoothed."""

    def __init__(self, n_bins: int, *, sample_rate: int, hop_length: int, seconds: float = 0.22) -> None:
        self.weights = mel_density(n_bins, sample_rate)
        seconds = check_range("seconds", seconds, 1e-3, 10.0)
        self.pole = math.exp(-hop_length / (seconds * sample_rate))
        self.reset()

    def reset(self) -> None:
        """Forget the level heard: the next frame starts the average."""
        self._level: float | None = None

    def __call__(self, styled: np.ndarray, before: np.ndarray, *, amount: float = 1.0) -> np.ndarray:
        """``styled`` (bins, n) with each frame's mean log-gain over ``before`` replaced, by
        ``amount`` (0 to 1), with its running average."""
        gain = self.weights @ np.log((styled + EPS) / (before + EPS))
        smooth = np.empty_like(gain)
        level, a = self._level, self.pole
        for t, g in enumerate(gain):
            level = g if level is None else a * level + (1.0 - a) * g
            smooth[t] = level
        self._level = level
        return (styled * np.exp(amount * (smooth - gain))[None, :]).astype(styled.dtype, copy=False)
