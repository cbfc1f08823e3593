"""The compiled device callback: its dry history, and the machine-code entry PortAudio calls."""

import ctypes

import numpy as np

from mst_live.io import device_callback as dc


def _state(**kw) -> dc.CallbackState:
    args = dict(dev_in=2, dev_out=2, in_width=2, dry_channels=(0, 1), in_cap=1000, out_cap=1000, hist_cap=100,
                delay=0, fade=8)
    return dc.CallbackState(**{**args, **kw})


def test_history_reads_back_any_delay_across_wraps():
    s, seq, w = _state(), np.arange(400_000, dtype=np.float32), 0
    rng = np.random.default_rng(1)
    for _ in range(3000):
        n = int(rng.integers(1, 130))  # sometimes more than it keeps
        dc.history_write(s.h, s.f, seq[w : w + n])
        w += n
        d, m = int(rng.integers(0, 90)), int(rng.integers(1, 8))
        out = np.zeros(m, np.float32)
        dc.history_read_delayed(s.h, s.f, out, d)
        want = [seq[i] if 0 <= i and i >= w - 100 else 0.0 for i in range(w - d - m, w - d)]
        assert out.tolist() == want


_PA_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                                ctypes.c_ulong, ctypes.c_void_p)


def test_the_machine_code_entry_copies_counts_and_fades_like_the_python_one():
    """PortAudio's view: raw interleaved pointers, a null pointer for a missing direction."""
    call = _PA_CALLBACK(dc.CALLBACK)
    s = _state(delay=5)
    frames = 64
    x = np.stack([np.arange(frames), -2 * np.arange(frames)], axis=1).astype(np.float32)  # two input channels
    styled = np.linspace(0.5, 1.0, frames + 10).astype(np.float32)
    assert s.out_ring.write(styled) == styled.size
    o = np.zeros((frames, 2), np.float32)
    assert call(x.ctypes.data, o.ctypes.data, frames, None, 0, s.address) == 0
    got = np.zeros((frames, 2), np.float32)
    assert s.in_ring.read_into(got) == frames and np.array_equal(got, x)  # both channels, interleaved
    assert np.array_equal(o[:, 0], styled[:frames]) and np.array_equal(o[:, 1], o[:, 0])
    assert s.h[dc.CALLS] == 1 and s.h[dc.UNDERRUNS] == 0 and s.h[dc.FRAMES_IN] == frames
    # the ring now holds 10 styled samples for a 64-frame block: an underrun, a fade to the dry
    # input (the mean of both channels, 5 samples late) and the device's late flag counted
    assert call(x.ctypes.data, o.ctypes.data, frames, None, 0x4, s.address) == 0
    assert s.h[dc.UNDERRUNS] == 1 and s.h[dc.OWED] == frames - 10 and s.h[dc.XRUNS] == 1
    dry = np.concatenate([x, x]).mean(axis=1)[frames - 5 : 2 * frames - 5]
    assert np.array_equal(o[:2, 0], styled[frames : frames + 2])  # the styled samples first
    assert np.allclose(o[20:, 0], dry[20:])  # then, past the fade, the dry input at the delay
    assert s.in_ring.read_into(got) == frames
    # an output-only stream: no input pointer, nothing captured; a file input that has ended: silence
    s.h[dc.INPUT_DONE] = 1
    o[:] = 1.0
    assert call(None, o.ctypes.data, frames, None, 0, s.address) == 0
    assert s.h[dc.FRAMES_IN] == 2 * frames and np.all(o == 0.0)
    # an input-only stream: captured, nothing written to a null output
    assert call(x.ctypes.data, None, frames, None, 0, s.address) == 0
    assert s.in_ring.available() == frames and s.h[dc.FRAMES_IN] == 3 * frames


def test_headroom_is_the_fewest_samples_left_after_a_read_in_each_window():
    call = _PA_CALLBACK(dc.CALLBACK)
    s = _state()
    frames, x, o = 64, np.zeros((64, 2), np.float32), np.zeros((64, 2), np.float32)
    assert s.take_headroom() is None  # no callback yet
    s.out_ring.write(np.ones(300, np.float32))
    for _ in range(3):  # 300 -> 236 -> 172 -> 108 left
        call(x.ctypes.data, o.ctypes.data, frames, None, 0, s.address)
        s.in_ring.read_into(x.copy())
    assert s.take_headroom() == 108
    s.out_ring.write(np.ones(500, np.float32))  # 608 ahead: the new window starts from its first read
    call(x.ctypes.data, o.ctypes.data, frames, None, 0, s.address)
    assert s.take_headroom() == 544
    assert s.take_headroom() is None  # nothing read since
    s.out_ring.read_into(np.zeros(534, np.float32))  # 10 left for a 64-frame read: 54 missing
    call(x.ctypes.data, o.ctypes.data, frames, None, 0, s.address)
    assert s.take_headroom() == -54 and s.h[dc.UNDERRUNS] == 1
