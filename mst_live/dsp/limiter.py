"""A peak limiter: instant attack, smooth release, so the output never passes the ceiling."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _limit(x, out, ceiling, release, state):
    g = state[0]
    for i in range(x.size):
        a = abs(x[i])
        want = ceiling / a if a > ceiling else 1.0
        if want < g:
            g = want  # attack at once: no sample may pass the ceiling
        else:
            g = g + (want - g) * release
        out[i] = x[i] * g
    state[0] = g


class PeakLimiter:
    """Gain drops instantly to keep |y| <= ceiling and recovers with a ~50 ms time constant."""

    def __init__(self, sample_rate: int, *, ceiling: float = 0.98, release_ms: float = 50.0) -> None:
        self.ceiling = ceiling
        self.release = 1.0 - np.exp(-1.0 / (release_ms * 1e-3 * sample_rate))
        self._state = np.ones(1, dtype=np.float64)

    def reset(self) -> None:
        self._state[0] = 1.0

    @property
    def gain(self) -> float:
        return float(self._state[0])

    def process(self, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        _limit(x, out, self.ceiling, self.release, self._state)
        return out
