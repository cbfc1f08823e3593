"""The engine's first stage: each bin's level and spread moved to the style's, within limits."""

import numpy as np
import pytest

from mst_live import ParameterError
from mst_live.dsp.bin_match import BinMatcher, BinStats


def test_running_statistics_equal_the_direct_ones_prior_included():
    rng = np.random.default_rng(0)
    prior = rng.uniform(0, 2, (5, 40))
    data = rng.uniform(0, 3, (5, 77))
    st = BinStats.seeded(prior.mean(axis=1), prior.std(axis=1), prior.shape[1])
    for i in range(0, data.shape[1], 10):
        st.add(data[:, i : i + 10])
    both = np.concatenate([prior, data], axis=1)
    assert np.allclose(st.mean(), both.mean(axis=1)) and np.allclose(st.std(), both.std(axis=1))


def test_the_input_ends_with_the_style_mean_and_spread():
    """After a long input, the matched frames have the style's per-bin mean and spread (where the
    limits do not bind: spread ratio within 2, nothing raised more than 12 dB)."""
    rng = np.random.default_rng(1)
    bins, n = 6, 20000
    x = rng.normal(2.0, 0.5, (bins, n)).clip(0)
    style_mean, style_std = np.full(bins, 2.6), np.linspace(0.3, 0.9, bins)
    m = BinMatcher(np.full(bins, 1.0), np.full(bins, 1.0), prior_frames=10)
    m.learn(x)
    y = m(x, style_mean, style_std)
    assert np.allclose(y.mean(axis=1), style_mean, atol=0.02)
    assert np.allclose(y.std(axis=1), style_std, atol=0.02)


def test_limits_on_spread_and_change():
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 0.05, (4, 5000)).clip(0)  # almost no spread
    m = BinMatcher(np.ones(4), np.ones(4), prior_frames=1, max_ratio=2.0)
    m.learn(x)
    wide = m(x, x.mean(axis=1), np.full(4, 2.0))  # the style far wider
    assert np.allclose(wide.std(axis=1), 2.0 * x.std(axis=1), rtol=0.02)  # the spread at most doubled
    loud = m(x, np.full(4, 6.0), x.std(axis=1), max_change_db=12.0)  # the style far louder
    gain = np.expm1(loud) / np.expm1(x)
    assert gain.max() <= 10 ** (12 / 20) * (1 + 1e-5) and gain.max() > 10 ** (11 / 20)
    flat = m(x, x.mean(axis=1), np.full(4, 1e-4))  # a style with no spread: a drone
    assert np.allclose(flat.std(axis=1), 0.5 * x.std(axis=1), rtol=0.02)  # the spread at most halved
    quiet = m(x, np.zeros(4), x.std(axis=1), max_change_db=12.0)  # the style far quieter
    assert (np.expm1(quiet) / np.expm1(x)).min() >= 10 ** (-12 / 20) * (1 - 1e-5)


def test_the_style_s_envelope_stops_raises_and_leaves_cuts_alone():
    """With the style's envelope, a bin the input leaves near silent (60 dB under its frame's
    peak) that the style wants as loud as the peak rises to the envelope, 20 dB under the peak,
    and no further; the bins the style leaves alone stay, and a level change passes whole."""
    rng = np.random.default_rng(4)
    mag = np.vstack([rng.uniform(0.9, 1.1, (64, 400)), np.full((1, 400), 1e-3)])
    x = np.log1p(mag)
    mean, std = x.mean(axis=1), x.std(axis=1)
    m = BinMatcher(mean, std, prior_frames=1)  # the input's own statistics, heard
    m.learn(x)
    wanted = np.array([*mean[:64], np.log1p(1.0)])  # the style: the last bin as loud as the rest
    depth = np.array([*np.zeros(64), 20.0])
    free = np.expm1(m(x, wanted, std, max_change_db=80.0))
    held = np.expm1(m(x, wanted, std, max_change_db=80.0, depth_db=depth))
    peak = mag[:64].max(axis=0)
    assert np.all(free[64] > 0.5)  # without the envelope it rises toward the peak
    np.testing.assert_allclose(held[64], 0.1 * peak, rtol=0.02)  # with it: 20 dB under the peak
    np.testing.assert_allclose(held[:64], mag[:64], rtol=1e-3)
    louder = np.full(65, 6.0)  # the style far louder in every bin: a level change passes whole
    assert np.allclose(m(x, louder, std, depth_db=np.full(65, 200.0)), m(x, louder, std), atol=1e-5)
    quiet = m(x, np.zeros(65), std, depth_db=depth)  # cuts are untouched
    assert np.allclose(quiet, m(x, np.zeros(65), std), atol=1e-6)


def test_amount_zero_is_the_input_and_a_fresh_stream_is_barely_moved():
    rng = np.random.default_rng(3)
    mean, std = np.linspace(0.5, 2.0, 8), np.full(8, 0.6)
    m = BinMatcher(mean, std)
    x = rng.normal(1.5, 0.6, (8, 8)).clip(0).astype(np.float32)
    assert np.array_equal(m(x, mean, std, amount=0.0), x)
    # nothing heard yet: the input is taken to have the style's statistics, so the map is the identity
    assert np.allclose(m(x, mean, std), np.maximum(x, 0), atol=1e-5)
    m.learn(rng.normal(3.0, 0.6, (8, 5000)))
    assert not np.allclose(m(x, mean, std), x, atol=0.1)
    m.reset()
    assert np.allclose(m(x, mean, std), x, atol=1e-5)


def test_bad_statistics_are_refused():
    with pytest.raises(ParameterError, match="shapes"):
        BinMatcher(np.ones(4), np.ones(5))
    with pytest.raises(ParameterError, match="max_ratio"):
        BinMatcher(np.ones(4), np.ones(4), max_ratio=0.5)


def test_the_loud_partials_keep_their_level():
    """With ``keep_peaks_db``, a bin within that many dB of its frame's loudest is never cut, even
    where the style is far quieter there; a quieter bin still is, and raises are untouched."""
    rng = np.random.default_rng(5)
    mag = np.vstack([np.full((1, 300), 1.0), np.full((1, 300), 0.5), np.full((1, 300), 0.02), np.full((1, 300), 0.01)])
    mag = mag * rng.uniform(0.95, 1.05, mag.shape)
    x = np.log1p(mag)
    mean, std = x.mean(axis=1), x.std(axis=1)
    m = BinMatcher(mean, std, prior_frames=1)
    m.learn(x)
    wanted = np.array([0.0, 0.0, 0.0, np.log1p(0.05)])  # the style: the first three bins silent, the last louder
    free = np.expm1(m(x, wanted, std, max_change_db=12.0))
    kept = np.expm1(m(x, wanted, std, max_change_db=12.0, keep_peaks_db=10.0))
    assert np.all(free[:3] < 0.3 * mag[:3])  # cut by the full 12 dB (a quarter) without
    np.testing.assert_allclose(kept[:2], mag[:2], rtol=1e-5)  # the peak and a bin 6 dB under it: kept
    np.testing.assert_allclose(kept[2], free[2], rtol=1e-6)  # 34 dB under the peak: cut as before
    np.testing.assert_allclose(kept[3], free[3], rtol=1e-6)  # a raise: as before
    assert np.all(kept[3] > mag[3])
