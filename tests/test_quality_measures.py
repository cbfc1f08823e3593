"""The quality benchmark's measures do what BENCHMARKS.md says they do: known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import SR, buzzy, harmonic_melody

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import quality_measures as qm  # scripts/ is not a package


@pytest.fixture(scope="module")
def measures(small):
    return qm.StyleMeasures(small, 0.3 * buzzy(12.0), 3.0)


def test_a_gain_or_a_static_eq_barely_moves_the_correlation_measure(measures):
    x = harmonic_melody(3.0, seed=2)
    tilt = qm.static_eq(x, 0.3 * buzzy(12.0))
    style = (0.3 * buzzy(15.0))[-3 * SR:]
    assert abs(measures.corr_gap(4.0 * x, x)) < 0.05
    assert abs(measures.corr_gap(tilt, x)) < 0.5 * measures.corr_gap(style, x)
    # the raw Gram, by contrast, is moved by a gain alone
    assert abs(measures.gram_gap(4.0 * x, x)) > 0.2


def test_flatness_sees_a_noise_floor_and_not_a_gain():
    x = harmonic_melody(3.0, seed=2)
    hiss = x + 0.003 * np.random.default_rng(0).standard_normal(x.size).astype(np.float32)
    assert qm.flatness(hiss) > 3 * qm.flatness(x)
    assert qm.flatness(0.1 * x) == pytest.approx(qm.flatness(x), rel=1e-3)


def test_level_normalised_log_mel_ignores_level_and_sees_timbre():
    x = harmonic_melody(3.0, seed=2)
    assert qm.logmel_distance(0.2 * x, x) < 1e-3
    assert qm.logmel_distance(qm.static_eq(x, 0.3 * buzzy(12.0)), x) > 1.0
