"""Output level: never clip."""

from __future__ import annotations

import numpy as np

PEAK_CEILING = 0.98


def limit_peak(audio: np.ndarray, *, ceiling: float = PEAK_CEILING) -> np.ndarray:
    """Scale the whole signal down if its peak passes ``ceiling``; leave it alone otherwise.

    The level is part of the style (log1p features are level-dependent): rescaling the output
    to the content's loudness was measured to undo most of the transfer, so only peaks are
    limited here.
    """
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    gain = ceiling / peak if peak > ceiling else 1.0
    return (audio * gain).astype(np.float32)
