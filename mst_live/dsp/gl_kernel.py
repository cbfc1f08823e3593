"""The Griffin-Lim update both phase reconstructors share: one frame, momentum, magnitudes imposed."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def project_frame(rebuilt, mags, spec, prev, beta, eps):
    """Fast Griffin-Lim (Perraudin et al. 2013) for one frame, in place.

    ``rebuilt`` is the frame's spectrum after the last overlap-add; the momentum term pushes it
    away from the previous one (``prev``), then ``mags`` are imposed with its phase. The magnitude
    is written out because complex abs() goes through hypot, several times slower here.
    """
    for k in range(rebuilt.size):
        r = rebuilt[k]
        a = r - beta * prev[k]
        re = a.real
        im = a.imag
        s = mags[k] / (np.sqrt(re * re + im * im) + eps)
        spec[k] = complex(re * s, im * s)
        prev[k] = r
