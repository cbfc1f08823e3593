"""Fast Griffin-Lim (Perraudin et al. 2013) with the meaning of librosa.griffinlim, in numba.

One iteration is fused into a single compiled pass: inverse FFT of every frame, windowed
overlap-add, normalisation by the (precomputed) window sum-square, forward FFT of every
re-windowed frame and the momentum update. librosa recomputes the window sum-square,
re-pads the signal and allocates its buffers on every iteration; skipping that is where the
speed comes from. FFTs run inside numba through rocket-fft (pocketfft underneath).
"""

from __future__ import annotations

import os

import numba
import numpy as np
import scipy.fft

from ..errors import ParameterError
from .gl_kernel import project_frame
from .stft import check_magnitudes, hann, n_frames_for, stft, window_sumsquare

_WORKERS = max(1, min(os.cpu_count() or 1, 8))


@numba.njit(cache=True, nogil=True, parallel=True)
def _istft_into(spec_tf, win, inv_wss, hop, out, frames):
    """Overlap-add the windowed inverse FFTs of spec_tf (frames, bins) into out (padded)."""
    n_frames = spec_tf.shape[0]
    n_fft = win.size
    frames[:] = scipy.fft.irfft(spec_tf, n_fft, axis=-1, workers=_WORKERS)
    # Overlap-add in `n_fft // hop` interleaved passes: frames in one pass never overlap,
    # so each pass runs in parallel without write conflicts.
    out[:] = 0
    stride = (n_fft + hop - 1) // hop
    for phase in range(stride):
        for t in numba.prange((n_frames - phase + stride - 1) // stride):
            f = phase + t * stride
            o = f * hop
            for i in range(n_fft):
                out[o + i] += frames[f, i] * win[i]
    for i in numba.prange(out.size):
        out[i] *= inv_wss[i]


@numba.njit(cache=True, nogil=True, parallel=True)
def _gla_loop(mag_tf, angles, win, inv_wss, hop, keep_lo, keep_hi, n_iter, momentum):
    """Run n_iter fast Griffin-Lim iterations in place on angles (unit phasors × magnitude)."""
    n_frames = mag_tf.shape[0]
    n_fft = win.size
    signal = np.zeros(n_fft + hop * (n_frames - 1), dtype=win.dtype)
    frames = np.empty((n_frames, n_fft), dtype=win.dtype)
    tprev = np.zeros_like(angles)
    beta = win.dtype.type(momentum / (1.0 + momentum))
    eps = np.finfo(win.dtype).tiny
    for it in range(n_iter):
        _istft_into(angles, win, inv_wss, hop, signal, frames)
        signal[:keep_lo] = 0
        signal[keep_hi:] = 0
        for t in numba.prange(n_frames):
            o = t * hop
            for i in range(n_fft):
                frames[t, i] = signal[o + i] * win[i]
        rebuilt = scipy.fft.rfft(frames, axis=-1, workers=_WORKERS)
        b = beta if it > 0 else beta * 0
        for t in numba.prange(n_frames):
            project_frame(rebuilt[t], mag_tf[t], angles[t], tprev[t], b, eps)
    _istft_into(angles, win, inv_wss, hop, signal, frames)
    return signal


def griffinlim(
    S: np.ndarray,
    *,
    n_iter: int = 32,
    hop_length: int | None = None,
    n_fft: int | None = None,
    window: str = "hann",
    momentum: float = 0.99,
    init: str | np.ndarray | None = "random",
    length: int | None = None,
    random_state: int | np.random.Generator | np.random.RandomState | None = None,
) -> np.ndarray:
    """Rebuild a signal whose STFT magnitude is close to ``S`` (bins, frames).

    Same meaning as ``librosa.griffinlim`` (centered STFT, zero padding). One extension:
    ``init`` may also be a complex array of S's shape whose phase starts the iteration,
    for example the phase of the content a transfer started from.
    """
    S = check_magnitudes(S)
    n_bins, n_frames = S.shape
    if n_fft is None:
        n_fft = 2 * (n_bins - 1)
    if n_fft // 2 + 1 != n_bins:
        raise ParameterError(f"n_fft={n_fft} does not match S with {n_bins} bins")
    if hop_length is None:
        hop_length = n_fft // 4
    if not (0 < hop_length <= n_fft // 2):
        raise ParameterError(f"hop_length={hop_length} is out of range [1, {n_fft // 2}]")
    if window != "hann":
        raise ParameterError(f"window={window!r} is not supported (only 'hann')")
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
        raise ParameterError(f"n_iter={n_iter!r} must be a whole number >= 0")
    if not np.isfinite(momentum) or momentum < 0:
        raise ParameterError(f"momentum={momentum!r} must be >= 0")
    natural = hop_length * (n_frames - 1)
    sig_len = natural if length is None else int(length)
    if sig_len < 0 or n_frames_for(sig_len, hop_length) != n_frames:
        raise ParameterError(f"length={length} does not give {n_frames} frames at hop {hop_length}")

    real = S.dtype
    cplx = np.complex128 if real == np.float64 else np.complex64
    mag_tf = np.ascontiguousarray(S.T)
    if isinstance(init, np.ndarray):
        if init.shape != S.shape:
            raise ParameterError(f"init has shape {init.shape}, S has {S.shape}")
        phase = np.exp(1j * np.angle(init.T))
    elif init == "random":
        if random_state is None:
            rng = np.random.default_rng()
        elif isinstance(random_state, (int, np.integer)):
            rng = np.random.RandomState(seed=int(random_state))
        elif isinstance(random_state, (np.random.RandomState, np.random.Generator)):
            rng = random_state
        else:
            raise ParameterError(f"random_state={random_state!r} is not supported")
        phase = np.exp(2j * np.pi * rng.random(size=S.shape)).T
    elif init is None:
        phase = np.ones_like(mag_tf)
    else:
        raise ParameterError(f"init={init!r} must be 'random', None or a complex array")
    angles = np.ascontiguousarray(phase * mag_tf, dtype=cplx)

    win = hann(n_fft, real)
    wss = window_sumsquare(win, n_frames, hop_length)
    tiny = np.finfo(real).tiny
    inv_wss = np.where(wss > tiny, 1.0 / np.where(wss > tiny, wss, 1.0), 1.0).astype(real)
    pad = n_fft // 2
    signal = _gla_loop(mag_tf, angles, win, inv_wss, hop_length, pad, pad + sig_len, int(n_iter), real.type(momentum))
    out = np.zeros(sig_len, dtype=real)
    k = min(sig_len, signal.size - pad)
    out[:k] = signal[pad : pad + k]
    return out


def spectral_convergence(y: np.ndarray, S: np.ndarray, *, n_fft: int, hop_length: int) -> float:
    """20·log10(‖|STFT(y)| − S‖ / ‖S‖) in dB: how well a rebuilt signal has the magnitudes asked for."""
    rebuilt = np.abs(stft(np.asarray(y, dtype=np.float32), n_fft=n_fft, hop_length=hop_length))
    n = min(rebuilt.shape[1], S.shape[1])
    return float(20 * np.log10(np.linalg.norm(rebuilt[:, :n] - S[:, :n]) / max(np.linalg.norm(S), 1e-30)))
