"""Streaming phase reconstruction: RTISI-LA (Zhu et al. 2007) with fast-GL momentum, in numba.

Magnitude frames arrive one at a time. Each new frame's phase starts from the FFT of the
partial reconstruction already under its window (what the frames before it imply), which is
far better than noise. Then `n_iter` Griffin-Lim passes refine the `look_ahead + 1` newest
frames together, and the oldest is committed to the overlap-add. A committed frame never
changes, so every sample that leaves is final. Each frame costs exactly
``n_iter * (look_ahead + 1)`` FFT pairs, whatever the signal, and the result does not depend
on how the frames are chunked, because every frame goes through the same operations in the
same order.
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import ParameterError, check_int, check_range
from .gl_kernel import project_frame
from .stft import check_magnitudes, hann, window_sumsquare


@numba.njit(cache=True, nogil=True)
def _iterate(spec, mags, prev, frozen, count, acc, norm, win, hop, keep_from, n_iter, beta):
    """n_iter GL passes over the `count` window frames against the committed part `acc`."""
    n_fft = win.size
    length = n_fft + (count - 1) * hop
    sig = np.empty(length, dtype=acc.dtype)
    seg = np.empty(n_fft, dtype=acc.dtype)
    for _ in range(n_iter):
        sig[:] = acc[:length]
        for j in range(count):
            frame = np.fft.irfft(spec[j], n_fft)
            o = j * hop
            for i in range(n_fft):
                sig[o + i] += frame[i] * win[i]
        for i in range(length):
            sig[i] = sig[i] * norm[i] if i >= keep_from else 0.0
        for j in range(count):
            if frozen[j]:
                continue
            o = j * hop
            for i in range(n_fft):
                seg[i] = sig[o + i] * win[i]
            project_frame(np.fft.rfft(seg), mags[j], spec[j], prev[j], beta, 1e-30)


@numba.njit(cache=True, nogil=True)
def _initial_phase(spec, mags, count, acc, norm, win, hop, keep_from):
    """Phase of the newest frame from the partial reconstruction under its window."""
    n_fft = win.size
    j_new = count - 1
    o_new = j_new * hop
    seg = np.zeros(n_fft, dtype=acc.dtype)
    for i in range(n_fft):
        seg[i] = acc[o_new + i]
    for j in range(count - 1):
        frame = np.fft.irfft(spec[j], n_fft)
        o = j * hop - o_new
        for i in range(n_fft):
            q = o + i
            if 0 <= q < n_fft:
                seg[q] += frame[i] * win[i]
    energy = 0.0
    for i in range(n_fft):
        v = seg[i] * norm[o_new + i] * win[i] if o_new + i >= keep_from else 0.0
        seg[i] = v
        energy += v * v
    n_bins = mags.shape[1]
    if energy <= 1e-20:
        for k in range(n_bins):
            spec[j_new, k] = mags[j_new, k]
        return
    est = np.fft.rfft(seg)
    for k in range(n_bins):
        a = est[k]
        re = a.real
        im = a.imag
        mag = np.sqrt(re * re + im * im)
        if mag > 1e-30:
            s = mags[j_new, k] / mag
            spec[j_new, k] = complex(re * s, im * s)
        else:
            spec[j_new, k] = mags[j_new, k]


@numba.njit(cache=True, nogil=True)
def _commit(spec, mags, prev, frozen, count, acc, norm, win, hop, out, n_out):
    """Add the oldest window frame to acc for good, emit its first hop samples, shift by hop."""
    n_fft = win.size
    frame = np.fft.irfft(spec[0], n_fft)
    for i in range(n_fft):
        acc[i] += frame[i] * win[i]
    for i in range(hop):
        out[n_out + i] = acc[i] * norm[i]
    acc[: acc.size - hop] = acc[hop:].copy()
    acc[acc.size - hop :] = 0
    for j in range(count - 1):
        spec[j] = spec[j + 1]
        mags[j] = mags[j + 1]
        prev[j] = prev[j + 1]
        frozen[j] = frozen[j + 1]
    return n_out + hop


class StreamingGriffinLim:
    """Frames in, finished samples out; same output for any chunking of the frames.

    Parameters
    ----------
    n_fft, hop_length : the STFT the magnitudes come from (centered, periodic Hann).
    n_iter : Griffin-Lim passes over the look-ahead window per incoming frame.
    look_ahead : frames after a frame that are seen before it is committed.
    momentum : fast Griffin-Lim momentum (0 gives plain RTISI-LA).

    ``latency`` is the delay, in samples, between the last sample a pushed frame covers and the
    last sample returned: the look-ahead frames plus the half frame of a centered STFT.
    """

    def __init__(
        self,
        *,
        n_fft: int = 2048,
        hop_length: int = 512,
        n_iter: int = 16,
        look_ahead: int = 3,
        momentum: float = 0.99,
        dtype: type = np.float32,
    ) -> None:
        self.n_fft = check_int("n_fft", n_fft, 16)
        if n_fft % 2:
            raise ParameterError(f"n_fft={n_fft} must be even")
        self.hop_length = check_int("hop_length", hop_length, 1, n_fft // 2)
        self.n_iter = check_int("n_iter", n_iter, 0, 1000)
        self.look_ahead = check_int("look_ahead", look_ahead, 0, 64)
        self.momentum = check_range("momentum", momentum, 0.0, 1.5)
        self.dtype = np.dtype(dtype)
        self._win = hann(n_fft, self.dtype)
        self.reset()

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def latency(self) -> int:
        return self.look_ahead * self.hop_length + self.n_fft // 2

    @property
    def ffts_per_frame(self) -> int:
        """FFT pairs spent on each frame: the fixed, known cost."""
        return self.n_iter * (self.look_ahead + 1) + 2

    def reset(self) -> None:
        """Forget everything: the next frame starts a new signal."""
        w = self.look_ahead + 1
        cplx = np.complex128 if self.dtype == np.float64 else np.complex64
        self._spec = np.zeros((w, self.n_bins), dtype=cplx)
        self._prev = np.zeros((w, self.n_bins), dtype=cplx)
        self._mags = np.zeros((w, self.n_bins), dtype=self.dtype)
        self._frozen = np.zeros(w, dtype=np.uint8)
        self._acc = np.zeros(self.n_fft + self.look_ahead * self.hop_length + self.hop_length, dtype=self.dtype)
        self._norm = np.zeros(self._acc.size, dtype=self.dtype)
        self._count = 0
        self._first = 0  # global index of the oldest frame in the window
        self._emitted = 0  # padded samples emitted so far

    def _keep_from(self) -> int:
        """Window-relative index of the first real (not centre-padding) sample."""
        return max(0, self.n_fft // 2 - self._first * self.hop_length)

    def _update_norm(self, n_frames_total: int) -> None:
        """1 / window sum-square over the window's samples, of the frames < ``n_frames_total``."""
        wss = window_sumsquare(self._win, n_frames_total, self.hop_length, start=self._first * self.hop_length,
                               length=self._norm.size)
        self._norm[:] = np.where(wss > 1e-12, 1.0 / np.maximum(wss, 1e-12), 0.0)

    def _drop_padding(self, out: np.ndarray) -> np.ndarray:
        """Turn emitted padded samples into signal samples (the first n_fft/2 are padding)."""
        pad = self.n_fft // 2
        start = self._emitted
        self._emitted += out.size
        skip = max(0, pad - start)
        return out[skip:]

    def push(self, magnitudes: np.ndarray, *, phases: np.ndarray | None = None, exact: bool = False) -> np.ndarray:
        """Feed magnitude frames (bins, n); returns the samples they complete (maybe none).

        ``phases``, complex frames of the same shape, start each new frame from their phase
        instead of the partial reconstruction. With ``exact`` those frames are taken as they
        are and held fixed (not refined): the engine does this when it passes the input's own
        STFT through, so that an unchanged signal comes back bit for bit, not re-estimated.
        """
        if exact and phases is None:
            raise ParameterError("exact=True needs the phases")
        mags = check_magnitudes(magnitudes, n_bins=self.n_bins, min_frames=0).astype(self.dtype, copy=False)
        n = mags.shape[1]
        if phases is not None and phases.shape != mags.shape:
            raise ParameterError(f"phases have shape {phases.shape}, magnitudes {mags.shape}")
        out = np.zeros(n * self.hop_length, dtype=self.dtype)
        n_out = 0
        beta = self.dtype.type(self.momentum / (1.0 + self.momentum))
        for t in range(n):
            j = self._count
            self._mags[j] = mags[:, t]
            self._prev[j] = 0
            self._frozen[j] = exact
            self._count += 1
            # only the frames present: sum(w * frame) / sum(w^2) over them is the least-squares
            # signal, so the window's tail is not tapered by frames that have not arrived
            self._update_norm(self._first + self._count)
            keep = self._keep_from()
            if phases is None:
                _initial_phase(self._spec, self._mags, self._count, self._acc, self._norm, self._win,
                               self.hop_length, keep)
            else:
                ph = np.asarray(phases[:, t])
                unit = ph / np.maximum(np.abs(ph), 1e-30)
                unit[np.abs(ph) <= 1e-30] = 1.0
                self._spec[j] = unit * self._mags[j]
            if not self._frozen[: self._count].all():  # with every frame held fixed there is nothing to refine
                _iterate(self._spec, self._mags, self._prev, self._frozen, self._count, self._acc, self._norm,
                         self._win, self.hop_length, keep, self.n_iter, beta)
            if self._count == self.look_ahead + 1:
                n_out = _commit(self._spec, self._mags, self._prev, self._frozen, self._count, self._acc, self._norm,
                                self._win, self.hop_length, out, n_out)
                self._count -= 1
                self._first += 1
        return self._drop_padding(out[:n_out])

    def flush(self, length: int | None = None) -> np.ndarray:
        """Finish the signal: refine and commit the frames still held, return the last samples.

        With ``length`` the whole output (all pushes plus this) is cut or zero-padded to it, as
        ``istft(length=...)`` would; by default it ends where a centered STFT's signal ends.
        """
        total = self._first + self._count
        beta = self.dtype.type(self.momentum / (1.0 + self.momentum))
        out = np.zeros((self._count + self.n_fft // self.hop_length + 1) * self.hop_length, dtype=self.dtype)
        n_out = 0
        while self._count > 0:
            self._update_norm(total)
            keep = self._keep_from()
            _iterate(self._spec, self._mags, self._prev, self._frozen, self._count, self._acc, self._norm, self._win,
                     self.hop_length, keep, self.n_iter, beta)
            n_out = _commit(self._spec, self._mags, self._prev, self._frozen, self._count, self._acc, self._norm,
                            self._win, self.hop_length, out, n_out)
            self._count -= 1
            self._first += 1
        # what is left in acc after the last frame's first hop: the rest of its window
        self._update_norm(total)
        tail = self.n_fft - self.hop_length
        out[n_out : n_out + tail] = self._acc[:tail] * self._norm[:tail]
        n_out += tail
        emitted_before = max(0, self._emitted - self.n_fft // 2)
        samples = self._drop_padding(out[:n_out])
        natural = max(0, self.hop_length * (total - 1))
        end = natural if length is None else int(length)
        keep = max(0, end - emitted_before)
        res = np.zeros(keep, dtype=self.dtype)
        k = min(keep, samples.size)
        res[:k] = samples[:k]
        self.reset()
        return res
