"""Each frame's level as before reshaping: level flicker out, spectral shape and slow level kept."""

import numpy as np
import pytest

from mst_live import ParameterError
from mst_live.dsp.frame_level import FrameLevel
from mst_live.dsp.mel import mel_density

SR, HOP, BINS = 22050, 512, 1025


def played(frames: int, seed: int = 0) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).standard_normal((BINS, frames))).astype(np.float32) * 3 + 0.1


def level_db(styled: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Each frame's mel-weighted mean gain over ``ref``, in dB."""
    return 20 / np.log(10) * (mel_density(BINS, SR) @ np.log(styled / ref))


def test_mel_density_counts_each_band_of_hearing_once():
    w = mel_density(BINS, SR)
    f = np.arange(BINS) * SR / 2 / (BINS - 1)
    assert w.sum() == pytest.approx(1.0)
    assert np.allclose(w[f < 1000], w[0])  # flat up to 1 kHz
    assert w[np.argmin(np.abs(f - 2000))] == pytest.approx(w[0] / 2, rel=0.01)  # then 1/f


def test_flicker_in_level_is_taken_out_and_a_steady_gain_kept():
    x = played(200)
    flicker = np.where(np.arange(200) % 2 == 0, 2.0, 0.5).astype(np.float32)  # +-6 dB, frame by frame
    steady = np.float32(2.0)
    keep = FrameLevel(BINS, sample_rate=SR, hop_length=HOP)
    out = keep(x * flicker[None, :], x)
    got = level_db(out, x)
    assert np.abs(np.diff(level_db(x * flicker[None, :], x))).min() > 11.9
    assert np.abs(np.diff(got[20:])).max() < 2.0  # what is left of a 12 dB swing, frame to frame
    keep.reset()
    assert np.allclose(level_db(keep(x * steady, x), x), 20 * np.log10(steady), atol=1e-3)


def test_the_spectral_shape_of_each_frame_is_the_style_s():
    x = played(30)
    shape = np.linspace(0.25, 4.0, BINS, dtype=np.float32)[:, None] * np.where(np.arange(30) % 3 == 0, 3.0, 1.0)
    out = FrameLevel(BINS, sample_rate=SR, hop_length=HOP)(x * shape, x)
    ratio = out / (x * shape)  # one factor per frame, the same in every bin
    assert np.allclose(ratio, ratio[:1, :], rtol=1e-4)
    assert ratio.std() > 0.05


def test_amount_zero_leaves_the_frames_and_pieces_equal_the_whole():
    x, g = played(60), played(60, seed=1)
    assert np.array_equal(FrameLevel(BINS, sample_rate=SR, hop_length=HOP)(x * g, x, amount=0.0), x * g)
    whole = FrameLevel(BINS, sample_rate=SR, hop_length=HOP)(x * g, x)
    keep = FrameLevel(BINS, sample_rate=SR, hop_length=HOP)
    pieces = np.concatenate([keep(x[:, a:b] * g[:, a:b], x[:, a:b]) for a, b in ((0, 7), (7, 7), (7, 40), (40, 60))], 1)
    assert np.allclose(pieces, whole, rtol=1e-5)


def test_silence_stays_silence_and_a_bad_time_is_refused():
    keep = FrameLevel(BINS, sample_rate=SR, hop_length=HOP)
    zero = np.zeros((BINS, 5), np.float32)
    assert np.array_equal(keep(zero, zero), zero)
    with pytest.raises(ParameterError, match="seconds"):
        FrameLevel(BINS, sample_rate=SR, hop_length=HOP, seconds=0.0)
