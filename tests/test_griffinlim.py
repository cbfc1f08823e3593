import librosa
import numpy as np
import pytest

from mst_live import ParameterError, griffinlim
from mst_live.dsp.griffinlim import spectral_convergence
from mst_live.dsp.stft import istft, stft

from .conftest import melody


def test_stft_matches_librosa_and_inverts():
    y = melody(1.0)
    S = stft(y, n_fft=512, hop_length=128)
    assert np.allclose(S, librosa.stft(y, n_fft=512, hop_length=128), atol=1e-4)
    assert np.allclose(istft(S, hop_length=128, length=y.size), y, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_agrees_with_librosa(dtype):
    y = melody(2.0).astype(dtype)
    S = np.abs(librosa.stft(y, n_fft=512, hop_length=128)).astype(dtype)
    ours = griffinlim(S, n_iter=16, hop_length=128, random_state=0)
    ref = librosa.griffinlim(S, n_iter=16, hop_length=128, n_fft=512, random_state=0)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    tol = 1e-3 if dtype == np.float32 else 1e-9
    assert np.max(np.abs(ours - ref)) <= tol * np.max(np.abs(ref))
    ours_sc, ref_sc = (spectral_convergence(y, S, n_fft=512, hop_length=128) for y in (ours, ref))
    assert abs(ours_sc - ref_sc) < 0.05


def test_length_and_zero_phase_init_match_librosa():
    y = melody(1.0, seed=4).astype(np.float64)
    S = np.abs(stft(y, n_fft=256, hop_length=64))
    ours = griffinlim(S, n_iter=5, hop_length=64, init=None, length=y.size)
    ref = librosa.griffinlim(S, n_iter=5, hop_length=64, n_fft=256, init=None, length=y.size)
    assert ours.size == y.size
    assert np.max(np.abs(ours - ref)) <= 1e-9 * np.max(np.abs(ref))


def test_true_phase_start_reconstructs_nearly_exactly():
    y = melody(2.0, seed=2)
    spec = stft(y, n_fft=512, hop_length=128)
    out = griffinlim(np.abs(spec), n_iter=4, hop_length=128, init=spec, length=y.size)
    assert np.max(np.abs(out - y)) < 1e-4
    assert spectral_convergence(out, np.abs(spec), n_fft=512, hop_length=128) < -60


def test_random_start_converges():
    y = melody(2.0, seed=3)
    S = np.abs(stft(y, n_fft=512, hop_length=128))
    few = spectral_convergence(griffinlim(S, n_iter=2, random_state=1), S, n_fft=512, hop_length=128)
    many = spectral_convergence(griffinlim(S, n_iter=60, random_state=1), S, n_fft=512, hop_length=128)
    assert many < few - 5


def test_single_frame_silence_and_odd_lengths():
    one = griffinlim(np.ones((257, 1), np.float32), n_iter=3, random_state=0)
    assert one.size == 0 and np.all(np.isfinite(one))
    silent = griffinlim(np.zeros((257, 20), np.float32), n_iter=3, random_state=0)
    assert np.all(silent == 0)
    for n in (1001, 1023, 777):
        S = np.abs(stft(melody(0.1)[:n], n_fft=256, hop_length=64))
        assert griffinlim(S, n_iter=2, hop_length=64, length=n, random_state=0).size == n


@pytest.mark.parametrize(
    ("S", "kwargs", "match"),
    [
        (np.full((257, 4), np.nan, np.float32), {}, "NaN"),
        (-np.ones((257, 4), np.float32), {}, "negative"),
        (np.ones(257, np.float32), {}, "shape"),
        (np.ones((257, 4), np.complex64), {}, "complex"),
        (np.ones((257, 4), np.float32), {"n_fft": 1024}, "n_fft"),
        (np.ones((257, 4), np.float32), {"hop_length": 0}, "hop_length"),
        (np.ones((257, 4), np.float32), {"momentum": -1.0}, "momentum"),
        (np.ones((257, 4), np.float32), {"length": 10_000}, "length"),
        (np.ones((257, 0), np.float32), {}, "frame"),
    ],
)
def test_bad_input_is_refused_clearly(S, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        griffinlim(S, **kwargs)
