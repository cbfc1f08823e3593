"""The device callback, compiled to machine code: no Python and no GIL on the audio thread.

PortAudio calls `CALLBACK` (a numba ``cfunc`` with PortAudio's callback signature) directly.
All it touches is one preallocated block of memory, `CallbackState`: a header of int64
counters, flags and layout, then float32 regions for the input ring, the output ring, the dry
history and scratch. The worker thread reads and writes the same memory through numpy views
(`Ring`), one writer per index. Python is never entered from the callback, so a worker that
holds the GIL, or the collector, cannot make the device late.

The x86-64 memory model keeps stores in order and aligned 64-bit stores whole; a fence on each
side of an index update keeps the compiler from moving the copies across it.
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .audio import Ring

HEADER = 64  # int64 slots before the float32 regions
# header slots: ring indices (total written / read, each moved by one side only)
IN_W, IN_R, OUT_W, OUT_R, HIST_W = 0, 1, 2, 3, 4
# counters the callback keeps
CALLS, XRUNS, UNDERRUNS, OWED, OVERRUNS, FRAMES_IN = 5, 6, 7, 8, 9, 10
# flags the worker sets (CAPTURING, RUNNING, INPUT_DONE) and the callback's own (ON_DRY)
CAPTURING, RUNNING, INPUT_DONE, ON_DRY = 11, 12, 13, 14
# layout, fixed at creation: the dry delay, sizes, the device's channel counts, region offsets
DELAY, IN_CAP, IN_WIDTH, OUT_CAP, HIST_CAP, FADE_N, DEV_IN, DEV_OUT, MAX_FRAMES = 15, 16, 17, 18, 19, 20, 21, 22, 23
OFF_IN, OFF_OUT, OFF_HIST, OFF_MONO, OFF_DRY, OFF_UP, OFF_DOWN, OFF_MIX, OFF_LAST, N_FLOATS = range(24, 34)
# headroom: the fewest output samples left after a callback's read in the current window (the
# callback's), the window the reader asked for (the reader's) and the one the callback is in
LOW, WINDOW_ASKED, WINDOW_SEEN = 34, 35, 36

# PortAudio's status flags (paInputOverflow, paOutputUnderflow): the device reported a late callback
XRUN_FLAGS = 0x2 | 0x4


@intrinsic
def _fence(typingctx):
    """A full memory fence: neither the compiler nor the CPU moves loads or stores across it."""
    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _is_null(typingctx, ptr):
    def codegen(context, builder, signature, args):
        zero = ir.Constant(ir.IntType(64), 0)
        return builder.icmp_unsigned("==", builder.ptrtoint(args[0], ir.IntType(64)), zero)

    return types.boolean(ptr), codegen


@numba.njit(cache=True, nogil=True)
def history_write(h, f, x):
    """Keep x as the newest dry samples (only the last HIST_CAP are kept)."""
    cap, off, w = h[HIST_CAP], h[OFF_HIST], h[HIST_W]
    n = x.shape[0]
    start = max(0, n - cap)
    for j in range(start, n):
        f[off + (w + j) % cap] = x[j]
    h[HIST_W] = w + n


@numba.njit(cache=True, nogil=True)
def history_read_delayed(h, f, out, delay):
    """The len(out) dry samples that ended ``delay`` samples before the newest; zeros where there
    are none (before the start, or no longer kept)."""
    cap, off, w = h[HIST_CAP], h[OFF_HIST], h[HIST_W]
    start = w - delay - out.shape[0]
    for j in range(out.shape[0]):
        i = start + j
        out[j] = f[off + i % cap] if i >= 0 and i >= w - cap else np.float32(0.0)


@numba.njit(cache=True, nogil=True)
def _to_dry(h, f, mono, got, have_input):
    """The worker is late: from sample ``got`` on, the dry input at the same delay, faded in."""
    n = mono.shape[0]
    if not have_input:
        mono[got:] = 0.0
        return
    fade = h[FADE_N]
    dry = f[h[OFF_DRY] : h[OFF_DRY] + n]
    up = f[h[OFF_UP] : h[OFF_UP] + fade]
    down = f[h[OFF_DOWN] : h[OFF_DOWN] + fade]
    history_read_delayed(h, f, dry, h[DELAY])
    if h[ON_DRY]:  # still on the dry input: the styled samples that came in time for the start of
        mono[:] = dry  # this block are let go, so that the way back is one fade, in a full block
    elif got >= fade:  # cross-fade from the last styled samples to the dry ones
        for j in range(got, n):
            mono[j] = dry[j]
        for j in range(fade):
            k = got - fade + j
            mono[k] = mono[k] * down[j] + dry[k] * up[j]
    else:  # too few styled samples to fade out of: the step to the dry input glides away instead
        last = mono[got - 1] if got else f[h[OFF_LAST]]
        step = last - dry[got]
        for j in range(got, n):
            mono[j] = dry[j]
        for j in range(min(fade, n - got)):
            mono[got + j] += down[j] * step
    h[ON_DRY] = 1


@numba.njit(cache=True, nogil=True)
def _from_dry(h, f, mono):
    """Back from the dry input: this block's first samples cross-fade from dry to styled."""
    n = mono.shape[0]
    m = min(h[FADE_N], n)
    dry = f[h[OFF_DRY] : h[OFF_DRY] + m]
    up, down = f[h[OFF_UP] :], f[h[OFF_DOWN] :]
    history_read_delayed(h, f, dry, h[DELAY] + n - m)  # the first m of this block's dry samples
    for j in range(m):
        mono[j] = mono[j] * up[j] + dry[j] * down[j]
    h[ON_DRY] = 0


@numba.njit(cache=True, nogil=True)
def run_callback(h, f, indata, outdata, frames, flags):
    """One device block: the input into the input ring (and the dry history), the output ring
    out, and on an underrun a short cross-fade to the dry input. Copies and counts only.

    ``indata`` is (frames, device input channels), or has no rows for an output-only stream;
    ``outdata`` likewise. The interpreter calls it in tests, the device through `CALLBACK`."""
    h[CALLS] += 1
    if flags & XRUN_FLAGS:
        h[XRUNS] += 1
    have_in = indata.shape[0] > 0
    have_out = outdata.shape[0] > 0
    if frames > h[MAX_FRAMES]:  # a device block larger than the scratch: never seen; play silence
        if have_out:
            outdata[:] = 0.0
        return 0
    if have_in and h[CAPTURING]:
        h[FRAMES_IN] += frames
        width, cap, off = h[IN_WIDTH], h[IN_CAP], h[OFF_IN]
        w = h[IN_W]
        _fence()
        n = min(frames, cap - (w - h[IN_R]))
        for j in range(n):
            base = off + ((w + j) % cap) * width
            for c in range(width):
                f[base + c] = indata[j, c]
        _fence()
        h[IN_W] = w + n
        if n < frames:
            h[OVERRUNS] += 1
        if have_out:
            dry = f[h[OFF_DRY] : h[OFF_DRY] + frames]
            mix = f[h[OFF_MIX] : h[OFF_MIX] + width]
            for j in range(frames):
                s = np.float32(0.0)
                for c in range(width):
                    s += indata[j, c] * mix[c]
                dry[j] = s
            history_write(h, f, dry)
    if have_out:
        mono = f[h[OFF_MONO] : h[OFF_MONO] + frames]
        cap, off = h[OUT_CAP], h[OFF_OUT]
        r = h[OUT_R]
        _fence()
        ahead = h[OUT_W] - r
        got = min(frames, ahead)
        if h[RUNNING] and not h[INPUT_DONE]:
            left = ahead - frames
            if h[WINDOW_SEEN] != h[WINDOW_ASKED]:
                h[WINDOW_SEEN] = h[WINDOW_ASKED]
                h[LOW] = left
            elif left < h[LOW]:
                h[LOW] = left
        for j in range(got):
            mono[j] = f[off + (r + j) % cap]
        _fence()
        h[OUT_R] = r + got
        if got < frames and h[RUNNING] and not h[INPUT_DONE]:
            # late: what is missing becomes the dry input at the same delay, and the styled
            # samples for these slots are dropped when they arrive, so the latency stays put
            h[UNDERRUNS] += 1
            h[OWED] += frames - got
            _to_dry(h, f, mono, got, have_in)
        elif got < frames:
            mono[got:] = 0.0  # a file input has ended
        elif h[ON_DRY]:
            _from_dry(h, f, mono)
        for j in range(frames):
            for c in range(outdata.shape[1]):
                outdata[j, c] = mono[j]
        if frames:
            f[h[OFF_LAST]] = mono[frames - 1]
    return 0


_SIG = types.intc(types.voidptr, types.voidptr, types.uintp, types.voidptr, types.uintp, types.voidptr)


@numba.cfunc(_SIG, nopython=True, cache=True)
def _pa_callback(inp, out, frames, time_info, flags, user):
    h = numba.carray(user, (HEADER,), np.int64)
    f = numba.carray(user, (h[N_FLOATS],), np.float32)
    n_in = 0 if _is_null(inp) else h[DEV_IN]
    n_out = 0 if _is_null(out) else h[DEV_OUT]
    n = np.int64(frames)
    indata = numba.carray(inp, (n if n_in else 0, max(n_in, 1)), np.float32)
    outdata = numba.carray(out, (n if n_out else 0, max(n_out, 1)), np.float32)
    return run_callback(h, f, indata, outdata, n, np.int64(flags))


CALLBACK = _pa_callback.address  # PortAudio's callback, as an address for sounddevice


def _lock_in_memory(raw: np.ndarray) -> bool:
    """Give every page of ``raw`` to the process now, and pin it there where the system allows
    (mlock): a page the callback touches first would fault on the audio thread, and a fault can
    wait for the worker's own memory operations. False when only touched, not pinned."""
    raw.fill(0)  # touch every page
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.mlock(ctypes.c_void_p(raw.ctypes.data), ctypes.c_size_t(raw.nbytes)) == 0
    except (OSError, AttributeError):
        return False


class CallbackState:
    """The memory the compiled callback and the worker share, with the worker's views of it.

    ``dev_in``/``dev_out``: the device's channel counts (0 for a one-way stream); the input ring
    keeps the first ``in_width`` of them, and the dry signal is their mean over ``dry_channels``.
    """

    def __init__(self, *, dev_in: int, dev_out: int, in_width: int, dry_channels: tuple[int, ...], in_cap: int,
                 out_cap: int, hist_cap: int, delay: int, fade: int, max_frames: int = 1 << 16) -> None:
        sizes = {OFF_IN: in_cap * in_width, OFF_OUT: out_cap, OFF_HIST: hist_cap, OFF_MONO: max_frames,
                 OFF_DRY: max_frames, OFF_UP: fade, OFF_DOWN: fade, OFF_MIX: in_width, OFF_LAST: 1}
        at = HEADER * 2  # float32 index just past the header
        offsets = {}
        for slot, size in sizes.items():
            offsets[slot] = at
            at += -(-size // 16) * 16  # each region on a 64-byte line
        self.raw = np.zeros(at * 4, np.uint8)
        self.locked = _lock_in_memory(self.raw)
        self.h = self.raw[: HEADER * 8].view(np.int64)
        self.f = self.raw.view(np.float32)
        h = self.h
        for slot, off in offsets.items():
            h[slot] = off
        h[N_FLOATS] = at
        h[IN_CAP], h[IN_WIDTH], h[OUT_CAP], h[HIST_CAP] = in_cap, in_width, out_cap, hist_cap
        h[DELAY], h[FADE_N], h[DEV_IN], h[DEV_OUT], h[MAX_FRAMES] = delay, fade, dev_in, dev_out, max_frames
        h[CAPTURING] = h[RUNNING] = 1
        h[WINDOW_ASKED] = 1  # the first callback opens the first window
        ramp = np.linspace(0.0, 1.0, fade + 2, dtype=np.float32)[1:-1]
        self.region(OFF_UP, fade)[:] = ramp
        self.region(OFF_DOWN, fade)[:] = ramp[::-1]
        self.region(OFF_MIX, in_width)[list(dry_channels)] = 1.0 / len(dry_channels)
        self.in_ring = Ring(in_cap, channels=in_width, buf=self.region(OFF_IN, in_cap * in_width),
                            index=self.h[IN_W : IN_R + 1])
        self.out_ring = Ring(out_cap, buf=self.region(OFF_OUT, out_cap), index=self.h[OUT_W : OUT_R + 1])

    def take_headroom(self) -> int | None:
        """The fewest output samples that were left after a callback's read since the last call
        (negative: that many were missing), and a new window opened; None when no callback has
        run since. A callback that runs between the read and the new window counts in the next."""
        h = self.h
        low = int(h[LOW]) if h[WINDOW_SEEN] == h[WINDOW_ASKED] else None
        h[WINDOW_ASKED] += 1
        return low

    def region(self, slot: int, size: int) -> np.ndarray:
        return self.f[self.h[slot] : self.h[slot] + size]

    @property
    def address(self) -> int:
        """The block's address: PortAudio's ``userData`` for `CALLBACK`."""
        return self.raw.ctypes.data
