"""The engine as a plugin: any block size, exact latency, parameters between calls."""

import numpy as np
import pytest

from mst_live import ParameterError, load_preset
from mst_live.engine import StyleEngine
from mst_live.params import LiveParams
from mst_live.quality import Yardstick

from .conftest import buzzy, melody


@pytest.fixture(scope="module")
def preset(small_preset_path):
    return load_preset(small_preset_path)


def make(preset, **kw):
    params = LiveParams(**kw.pop("params", {}))
    return StyleEngine(preset, block_frames=kw.pop("block_frames", 8), params=params, device="cpu",
                       precision=kw.pop("precision", "float32"), **kw)


def run(engine, x, sizes):
    outs, i, k = [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        outs.append(engine.process(x[i : i + n]))
        assert outs[-1].size == min(n, x.size - i)
        i += n
        k += 1
    outs.append(engine.flush())
    return np.concatenate(outs)


def test_block_size_does_not_change_the_output(preset):
    x = melody(2.0)
    a = run(make(preset), x, [x.size])
    b = run(make(preset), x, [1, 0, 7, 300, 4096, 2])
    c = run(make(preset), x, [512])
    assert a.size == x.size + make(preset).latency
    assert np.allclose(a, b, atol=1e-5) and np.allclose(a, c, atol=1e-5)


def test_zero_style_weight_lines_up_with_the_input(preset):
    x = melody(2.0, seed=3)
    eng = make(preset, params={"style_weight": 0.0})
    y = run(eng, x, [333])
    d = eng.latency
    assert eng.stats.underruns == 0
    assert np.max(np.abs(y[d:] - x)) < 1e-3 * np.max(np.abs(x))
    assert np.max(np.abs(y[:d])) < 1e-6


def test_latency_is_exact_and_minimal_for_a_click(preset):
    x = np.zeros(22050, np.float32)
    x[5000] = 0.8
    eng = make(preset, params={"style_weight": 0.0})
    y = run(eng, x, [64])
    assert int(np.argmax(np.abs(y))) == 5000 + eng.latency
    s = preset.settings
    assert eng.latency == (8 + 2 + 3 - 1) * s.hop_length + s.n_fft - 1


def test_styled_output_moves_toward_the_style(preset, small):
    x = melody(4.0, seed=4)
    eng = make(preset, params={"steps": 20})
    y = run(eng, x, [1000])[eng.latency :]
    ys = Yardstick(small)
    gap = ys.style_gap_closed(y, x, ys.gram(0.3 * buzzy(12.0)))
    assert gap > 0.2, gap
    assert np.max(np.abs(y)) <= 0.98 + 1e-6 and np.all(np.isfinite(y))
    assert eng.stats.evaluations > 0 and eng.stats.underruns == 0


def test_parameters_change_between_calls_without_clicks(preset):
    x = melody(2.0, seed=5)
    eng = make(preset, params={"style_weight": 0.0})
    first = eng.process(x[:11025])
    eng.params.set("level", -20.0)
    second = eng.process(x[11025:])
    tail = eng.flush()
    y = np.concatenate([first, second, tail])[eng.latency :]
    # the level ramps across the block after the change: no step larger than the signal's own
    d = np.abs(np.diff(y))
    assert d.max() < 2 * np.abs(np.diff(x)).max() + 1e-6
    late = slice(x.size - 5000, x.size - 100)
    ratio = np.sqrt(np.mean(y[late] ** 2) / np.mean(x[late] ** 2))
    assert abs(20 * np.log10(ratio) + 20) < 1.0


def test_bypass_and_mix(preset):
    x = melody(1.0, seed=6)
    eng = make(preset, params={"bypass": 1})
    y = run(eng, x, [500])
    assert np.allclose(y[eng.latency :], x, atol=1e-6)
    eng = make(preset, params={"mix": 0.0, "steps": 3})
    y = run(eng, x, [500])
    assert np.allclose(y[eng.latency :], x, atol=1e-6)


def test_reset_and_empty_and_bad_input(preset):
    eng = make(preset)
    assert eng.process(np.zeros(0, np.float32)).size == 0
    assert eng.process(np.zeros(1, np.float32)).size == 1
    eng.reset()
    with pytest.raises(ParameterError):
        eng.process(np.zeros((10, 2), np.float32))
    with pytest.raises(ParameterError):
        eng.process(np.zeros(10, np.int16))
    y = eng.process(np.full(100, np.nan, np.float32))
    assert np.all(np.isfinite(y))
    with pytest.raises(ParameterError, match="mix"):
        eng.params.set("mix", 2.0)
    with pytest.raises(ParameterError, match="unknown"):
        eng.params.set("wobble", 1.0)


def test_deadline_falls_back_to_fewer_steps(preset):
    import time

    x = melody(1.0, seed=7)
    eng = make(preset, params={"steps": 50})
    y = eng.process(x, deadline=time.perf_counter() - 1.0)  # already late: no optimisation at all
    assert y.size == x.size
    assert eng.stats.evaluations == 0 and eng.stats.dry_blocks == eng.stats.blocks > 0
