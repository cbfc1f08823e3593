import numpy as np
import pytest
from yardstick import Yardstick

from mst_live import ParameterError, load_preset, transfer

from .conftest import buzzy, melody


@pytest.fixture(scope="module")
def result(small_preset_path):
    preset = load_preset(small_preset_path)
    content = melody(3.0)
    return preset, content, transfer(content, preset, n_iter=60, phase_iters=40)


def test_transfer_moves_toward_the_style_on_a_yardstick(result, small):
    _, content, r = result
    ys = Yardstick(small)
    assert ys.settings.seed != small.seed and ys.settings.n_filters != small.n_filters
    assert ys.settings.width != small.width
    gap = ys.style_gap_closed(r.audio, content, ys.gram(0.3 * buzzy(12.0)))
    assert gap > 0.3, gap
    # and it is still the content, not noise shaped like the style
    assert ys.content_distance(r.audio, content) < ys.content_distance(buzzy(3.0), content)


def test_output_is_clean_and_aligned(result):
    _, content, r = result
    assert r.audio.shape == content.shape and r.audio.dtype == np.float32
    assert np.all(np.isfinite(r.audio))
    assert np.max(np.abs(r.audio)) <= 0.98 + 1e-6
    assert not r.interrupted


def test_zero_style_weight_returns_the_content(small_preset_path):
    preset = load_preset(small_preset_path)
    content = melody(1.0, seed=5)
    r = transfer(content, preset, n_iter=10, style_weight=0.0, phase_iters=32)
    assert np.allclose(r.magnitude, r.content_magnitude, rtol=1e-3, atol=1e-3)
    corr = np.corrcoef(r.audio, content)[0, 1]
    assert corr > 0.95


def test_long_input_goes_through_in_segments(small_preset_path):
    preset = load_preset(small_preset_path)
    content = melody(5.0, seed=6)
    seen = []
    r = transfer(content, preset, n_iter=5, phase_iters=8, segment_seconds=1.0,
                 progress=lambda d, t: seen.append((d, t)))
    assert r.audio.size == content.size and np.all(np.isfinite(r.audio))
    # 5 s in 1 s segments: several optimisations, each reporting progress
    assert seen[-1][1] >= 5 * 5
    # the segments join without a hole or a jump in level
    env = np.array([np.sqrt(np.mean(r.audio[i : i + 2205] ** 2)) for i in range(0, r.audio.size - 2205, 2205)])
    assert env[2:-2].min() > 0.1 * np.median(env)


def test_bad_parameters_are_named(small_preset_path):
    preset = load_preset(small_preset_path)
    with pytest.raises(ParameterError, match="n_iter"):
        transfer(melody(0.5), preset, n_iter=-1)
    with pytest.raises(ParameterError, match="style_weight"):
        transfer(melody(0.5), preset, style_weight=float("nan"))
    with pytest.raises(ParameterError, match="NaN"):
        transfer(np.full(1000, np.nan, np.float32), preset)
    with pytest.raises(ParameterError, match="mono"):
        transfer(np.zeros((10, 2), np.float32), preset)
