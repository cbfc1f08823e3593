"""Where each frame sits in its note: frames since the last onset, from the past alone.

An instrument is as much how its notes unfold as what their spectra are: a plucked string is
bright at the pluck and dull a second later, a bowed one the same all through. The style's own
frames carry their age in their note (`palette.PaletteSampler`), and a frame played is matched
to style frames of the same age as well as the same pitches, so that a sustained input played
into a plucked style takes the string's decay and a plucked one into a bowed style its sustain.
"""

from __future__ import annotations

import numpy as np

HELD_S = 1.12  # a note older than this is "held": its age stops counting
RISE = 2.5  # an onset: the frame's spectral flux this many times its running mean
QUIET_FLUX = 1e-3  # and above this much (silence's flux is no onset)
GAP_S = 0.09  # between two onsets at least
MEAN_S = 1.15  # the running mean's time constant


def max_age(frame_rate: float) -> int:
    """The age that means "held", in frames at ``frame_rate`` frames a second."""
    return min(255, max(1, round(HELD_S * frame_rate)))  # a preset keeps ages in one byte


class OnsetClock:
    """Counts frames since the last onset in a stream of magnitude frames (positive spectral flux
    of the log-magnitude against its running mean), up to `max_age`."""

    def __init__(self, frame_rate: float) -> None:
        self.max_age = max_age(frame_rate)
        self._gap = max(1, round(GAP_S * frame_rate))
        self._memory = float(np.exp(-1.0 / (MEAN_S * frame_rate)))
        self.reset()

    def reset(self) -> None:
        self._last: np.ndarray | None = None
        self._state = (0.0, self.max_age, self._gap)  # running mean of the flux, age, frames since an onset

    def __call__(self, magnitude: np.ndarray, *, commit: int | None = None) -> np.ndarray:
        """Ages (n,) of frames (bins, n). The clock moves on through the first ``commit`` frames
        only (all by default): the rest come again with the next call, as a block's overlap does."""
        mag = np.asarray(magnitude, np.float32)
        n = mag.shape[1]
        commit = n if commit is None else commit
        log = np.log1p(100.0 * mag)  # about log-magnitude, from 40 dB under unit magnitude
        prev = np.concatenate([log[:, :1] if self._last is None else self._last[:, None], log[:, :-1]], axis=1)
        flux = np.maximum(log - prev, 0.0).sum(axis=0)
        ages = np.empty(n, np.int64)
        mean, age, since = self._state
        for t in range(n):
            onset = flux[t] > RISE * mean + QUIET_FLUX and since >= self._gap
            age = 0 if onset else min(age + 1, self.max_age)
            since = 0 if onset else since + 1
            mean = self._memory * mean + (1.0 - self._memory) * float(flux[t])
            ages[t] = age
            if t + 1 == commit:
                self._state, self._last = (mean, age, since), log[:, t].copy()
        return ages
