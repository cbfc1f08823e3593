import numpy as np
import pytest

from mst_live import ParameterError, StreamingGriffinLim, griffinlim
from mst_live.dsp.griffinlim import spectral_convergence
from mst_live.dsp.stft import stft

from .conftest import melody


@pytest.fixture(scope="module")
def clip():
    y = melody(3.0, seed=7) + 0.3 * melody(3.0, seed=8)
    return y, np.abs(stft(y, n_fft=512, hop_length=128))


def run(gl, S, chunks, length=None):
    parts, i = [], 0
    for n in chunks:
        parts.append(gl.push(S[:, i : i + n]))
        i += n
    assert i == S.shape[1]
    parts.append(gl.flush(length=length))
    return np.concatenate(parts)


def test_output_is_identical_for_any_chunking(clip):
    _, S = clip
    gl = StreamingGriffinLim(n_fft=512, hop_length=128, n_iter=4, look_ahead=3)
    whole = run(gl, S, [S.shape[1]])
    ones = run(gl, S, [1] * S.shape[1])
    rng = np.random.default_rng(0)
    cuts, left = [], S.shape[1]
    while left:
        cuts.append(int(min(left, rng.integers(0, 9))))
        left -= cuts[-1]
    mixed = run(gl, S, cuts)
    assert whole.size == 128 * (S.shape[1] - 1)
    assert np.array_equal(whole, ones) and np.array_equal(whole, mixed)


def test_converges_like_offline_griffinlim(clip):
    y, S = clip
    gl = StreamingGriffinLim(n_fft=512, hop_length=128, n_iter=8, look_ahead=3)
    out = run(gl, S, [5] * (S.shape[1] // 5) + [S.shape[1] % 5], length=y.size)
    assert out.size == y.size and np.all(np.isfinite(out))
    sc = spectral_convergence(out, S, n_fft=512, hop_length=128)
    offline = spectral_convergence(griffinlim(S, n_iter=32, hop_length=128, random_state=0), S,
                                   n_fft=512, hop_length=128)
    assert sc < -15, sc
    assert sc < offline + 3, (sc, offline)
    # more work per frame helps: the iterations really refine
    lazy = run(StreamingGriffinLim(n_fft=512, hop_length=128, n_iter=0, look_ahead=0), S, [S.shape[1]])
    assert sc < spectral_convergence(lazy, S, n_fft=512, hop_length=128) - 3


def test_samples_come_out_after_the_reported_latency(clip):
    _, S = clip
    gl = StreamingGriffinLim(n_fft=512, hop_length=128, n_iter=2, look_ahead=2)
    assert gl.latency == 2 * 128 + 256
    got = 0
    for t in range(S.shape[1]):
        got += gl.push(S[:, t : t + 1]).size
        # frames 0..t cover signal samples up to t*hop + n_fft/2; all but the latency is out
        assert got == max(0, (t + 1) * 128 + 256 - gl.latency - 256), (t, got)
    assert gl.ffts_per_frame == 2 * 3 + 2


def test_reset_starts_a_new_signal(clip):
    _, S = clip
    gl = StreamingGriffinLim(n_fft=512, hop_length=128, n_iter=3)
    first = run(gl, S, [S.shape[1]])
    gl.push(S[:, :10])
    gl.reset()
    assert np.array_equal(run(gl, S, [S.shape[1]]), first)


def test_silence_single_frame_and_bad_input():
    gl = StreamingGriffinLim(n_fft=256, hop_length=64, n_iter=3)
    silent = run(gl, np.zeros((129, 20), np.float32), [20])
    assert silent.size == 64 * 19 and np.all(silent == 0)
    one = run(gl, np.ones((129, 1), np.float32), [1])
    assert one.size == 0
    for bad, match in [(np.full((129, 2), np.nan), "NaN"), (-np.ones((129, 2)), "negative"),
                       (np.ones((128, 2)), "shape"), (np.ones((129, 2), complex), "complex")]:
        with pytest.raises(ParameterError, match=match):
            gl.push(bad)
    with pytest.raises(ParameterError, match="look_ahead"):
        StreamingGriffinLim(look_ahead=-1)
    with pytest.raises(ParameterError, match="hop_length"):
        StreamingGriffinLim(n_fft=256, hop_length=200)


def test_fft_count_per_frame_is_counted_not_computed(clip, monkeypatch):
    """Run the kernels as plain Python with counting FFTs: the cost per frame is what `ffts_per_frame` says."""
    import types

    from mst_live.dsp import streaming_gl as sgl

    counts = {"rfft": 0, "irfft": 0}

    def counted(name):
        real = getattr(np.fft, name)

        def fn(*a, **k):
            counts[name] += 1
            return real(*a, **k)
        return fn

    fake_np = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    fake_np.fft = types.SimpleNamespace(rfft=counted("rfft"), irfft=counted("irfft"))
    for kernel in ("_iterate", "_initial_phase", "_commit"):
        py = getattr(sgl, kernel).py_func
        monkeypatch.setattr(sgl, kernel, types.FunctionType(py.__code__, {**py.__globals__, "np": fake_np}))
    _, S = clip
    gl = StreamingGriffinLim(n_fft=512, hop_length=128, n_iter=3, look_ahead=2)
    warm = 10
    gl.push(S[:, :warm])  # past the start, where the window is not yet full
    counts.update(rfft=0, irfft=0)
    n = 6
    gl.push(S[:, warm : warm + n])
    pairs_per_frame = (counts["rfft"] + counts["irfft"]) / 2 / n  # n_iter passes over the window, the
    assert pairs_per_frame == gl.ffts_per_frame, (counts, gl.ffts_per_frame)  # first guess, the commit
