"""Devices and the engine: device callback <-> rings <-> worker thread <-> engine.

The device callback is compiled (io.device_callback): it copies between the device and two
preallocated rings, fades to the dry input when the worker is late, and counts problems, all
without entering Python. The worker resamples (dsp.resample, streaming, 3 ms each way) between
the device rate and the engine's, runs the engine against a deadline taken from how much audio
the output ring still holds, and feeds the ring back. The main thread only draws the status and waits for Ctrl-C,
SIGTERM, the end of a file input, or a device failure.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from ..dsp.resample import StreamingResampler
from ..engine import StyleEngine
from . import device_callback as dc
from .files import iter_mono_blocks
from .render import Take

SAFETY_S = 0.03  # the optimiser stops this long before the output ring would run dry
CHUNK_MS = 5.0  # the worker takes the input in chunks this long
PRIME_MARGIN_S = 0.03  # output primed with one block of silence plus this: the worker's time to compute a block
FADE = 64  # samples of cross-fade between the styled output and the dry input around an underrun
STALL_S = 1.0  # a device that has not called back for this long, while said to be active, has stopped


def _peak(previous: float, x: np.ndarray) -> float:
    """A peak meter with a fall-back: the new peak, or the last one decayed by 10 %."""
    return max(previous * 0.9, float(np.max(np.abs(x))) if x.size else 0.0)


def _counter(slot: int, doc: str) -> property:
    """A count the compiled callback keeps in its shared header, read-only here."""
    return property(lambda self: int(self.state.h[slot]), doc=doc)


def _flag(slot: int, doc: str) -> property:
    """A flag in the shared header that the worker sets and the callback obeys."""
    def put(self, on: bool) -> None:
        self.state.h[slot] = int(on)

    return property(lambda self: bool(self.state.h[slot]), put, doc=doc)


def _held_back(stream: StreamingResampler, device_rate: int, chunk: int) -> int:
    """Samples, at the device's rate, that a resampler stream keeps back once running (measured
    on zeros, not taken from its design)."""
    rate_in, rate_out = stream.rate_in, stream.rate_out
    step = max(1, round(chunk * rate_in / device_rate))
    n_in = n_out = 0
    for _ in range(200):
        n_in += step
        n_out += stream.resample_chunk(np.zeros(step, np.float32)).size
    stream.reset()
    held = n_in * rate_out / rate_in - n_out  # in output samples
    return int(np.ceil(held * device_rate / rate_out))


class LiveRunner:
    def __init__(self, engine: StyleEngine, *, device_rate: int, chunk_ms: float = CHUNK_MS,
                 input_channels: tuple[int, ...] = (0,), compute_blocks: float = 1.0, has_input: bool = True,
                 out_channels: int = 1) -> None:
        self.engine = engine
        self.rate = device_rate
        self.chunk = max(32, int(device_rate * chunk_ms / 1000))
        sr = engine.sample_rate
        block_s = engine.block_frames * engine.settings.hop_length / sr
        self._to_engine = self._from_engine = None
        self.holdback = 0
        if device_rate != sr:
            self._to_engine = StreamingResampler(device_rate, sr)
            self._from_engine = StreamingResampler(sr, device_rate)
            self.holdback = sum(_held_back(rs, device_rate, self.chunk) for rs in (self._to_engine, self._from_engine))
        # what the output ring must hold before the first styled sample can be there: the
        # worker's time to compute a block, the samples the resamplers hold back, one polling
        # chunk, and a margin
        self.prime = int((compute_blocks * block_s + PRIME_MARGIN_S) * device_rate) + self.chunk + self.holdback
        # in to out inside mst-live, in device samples: the prime plus the engine (the resampler
        # streams keep samples aligned, so they add nothing once the pipeline is full)
        self.delay = self.prime + round(engine.latency * device_rate / sr)
        self.in_channels = tuple(input_channels)
        self.width = max(self.in_channels) + 1  # device input channels taken: up to the last one chosen
        # the memory the compiled device callback shares with this worker: rings, the dry
        # input's history (for underruns) and the counters
        self.state = dc.CallbackState(dev_in=self.width if has_input else 0, dev_out=out_channels,
                                      in_width=self.width, dry_channels=self.in_channels,
                                      in_cap=int(device_rate * 8), out_cap=int(device_rate * 8) + self.prime,
                                      hist_cap=self.delay + (1 << 16), delay=self.delay, fade=FADE)
        self.in_ring, self.out_ring = self.state.in_ring, self.state.out_ring
        self.out_ring.write(np.zeros(self.prime, np.float32))
        self.dropped = 0  # styled samples the worker threw away, their slots filled with dry input already
        self.in_peak = 0.0
        self.out_peak = 0.0
        self.finished = threading.Event()
        self.error: str | None = None
        self._headroom: deque[tuple[float, int]] = deque(maxlen=64)  # (when, fewest samples left) per window
        self.lowest_headroom: int | None = None

    # ------------------------------------------------- what the callback counts and is told
    callbacks = _counter(dc.CALLS, "device callbacks so far")
    xruns = _counter(dc.XRUNS, "the device reported a late callback (host scheduling)")
    underruns = _counter(dc.UNDERRUNS, "callbacks that found the output ring short: the worker was late")
    owed = _counter(dc.OWED, "samples the callback filled with dry input instead")
    overruns = _counter(dc.OVERRUNS, "input ring full: the worker fell behind")
    frames_in = _counter(dc.FRAMES_IN, "device input frames captured")
    running = _flag(dc.RUNNING, "cleared to stop: an empty ring is then the end, not an underrun")
    capturing = _flag(dc.CAPTURING, "cleared first at the end, so a take holds exactly what was captured")
    input_done = _flag(dc.INPUT_DONE, "a file input is fully queued: the ring may now run empty")

    def headroom_s(self, *, over: float = 1.0) -> tuple[float | None, float | None]:
        """How close the worker came to an underrun: the fewest seconds of styled output that were
        left after a device read, over the last ``over`` seconds and over the whole run (negative:
        that much was missing). Measured by the callback on the ring itself, not planned."""
        now, low = time.monotonic(), self.state.take_headroom()
        if low is not None:
            self._headroom.append((now, low))
            self.lowest_headroom = low if self.lowest_headroom is None else min(self.lowest_headroom, low)
        recent = [v for t, v in self._headroom if now - t <= over]
        lowest = self.lowest_headroom
        return (min(recent) / self.rate if recent else None, None if lowest is None else lowest / self.rate)

    def callback(self, indata, outdata, frames, time_info, status) -> None:
        """The compiled callback's work, called from Python (tests; the device calls it directly
        through `dc.CALLBACK`)."""
        flags = dc.XRUN_FLAGS if status is not None and (status.input_overflow or status.output_underflow) else 0
        no = np.zeros((0, 1), np.float32)
        dc.run_callback(self.state.h, self.state.f, no if indata is None else indata,
                        no if outdata is None else outdata, frames, flags)

    # ---------------------------------------------------------------- worker thread
    def _resample(self, rs, x: np.ndarray, *, last: bool = False) -> np.ndarray:
        return x if rs is None else rs.resample_chunk(x, last=last)

    def _deadline(self) -> float:
        return time.perf_counter() + self.out_ring.available() / self.rate - SAFETY_S

    def _process(self, x: np.ndarray, *, deadline: bool = True) -> np.ndarray:
        """Input at the engine's rate through the engine, against the output ring's deadline."""
        self.in_peak = _peak(self.in_peak, x)
        return self.engine.process(x, deadline=self._deadline() if deadline else None)

    def _mix_down(self, frames: np.ndarray) -> np.ndarray:
        """The chosen input channels (device order) mixed to mono."""
        if frames.ndim == 1:
            return frames.copy()
        if len(self.in_channels) == 1:
            return frames[:, self.in_channels[0]].copy()
        return frames[:, list(self.in_channels)].mean(axis=1, dtype=np.float32)

    def work_from_ring(self, sink, take: Take | None = None) -> None:
        """Device input: take what the callback captured, process, hand to ``sink`` (and ``take``).

        When stopped, a take gets everything captured so far and the engine's tail: the file
        holds all that was played, to the end."""
        shape = self.chunk if self.in_ring.channels == 1 else (self.chunk, self.in_ring.channels)
        buf = np.zeros(shape, np.float32)
        try:
            while self.running:
                if self.in_ring.available() < self.chunk:
                    time.sleep(0.002)
                    continue
                self.in_ring.read_into(buf)
                y = self._process(self._resample(self._to_engine, self._mix_down(buf)))
                sink(y)
                if take is not None:
                    take.write(y)
            if take is not None:
                self.capturing = False
                time.sleep(0.05)  # a callback already past its check finishes its copy
                while True:
                    n = self.in_ring.read_into(buf)
                    last = self.in_ring.available() == 0
                    take.write(self._process(self._resample(self._to_engine, self._mix_down(buf[:n]), last=last),
                                             deadline=False))
                    if last:
                        break
                take.write(self.engine.flush())
        except Exception as exc:  # shown as one line by the main thread
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished.set()

    def work_from_file(self, path: str) -> None:
        """File input played as if live: paced by how fast the device drains the output ring."""
        try:
            sr = self.engine.sample_rate
            for block in iter_mono_blocks(path, sr, block=4096):
                for i in range(0, block.size, 512):
                    while self.running and self.out_ring.available() > self.prime + self.chunk:
                        time.sleep(0.002)
                    if not self.running:
                        return
                    self.to_device(self._process(block[i : i + 512]))
            # let the tail out: flush the engine and wait for the ring to drain
            self.to_device(self.engine.flush())
            self.input_done = True
            while self.running and self.out_ring.available() > 0:
                time.sleep(0.01)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished.set()

    def to_device(self, y: np.ndarray) -> None:
        out = self._resample(self._from_engine, y)
        late = min(self.owed - self.dropped, out.size)
        if late > 0:  # their slots were filled with dry input already
            out = out[late:]
            self.dropped += late
        self.out_peak = _peak(self.out_peak, out)
        while self.running and self.out_ring.space() < out.size:
            time.sleep(0.002)
        self.out_ring.write(out)

    def latency_s(self, device_latency: float) -> float:
        """In to out: mst-live's own delay plus the device's input and output latencies."""
        return self.delay / self.rate + device_latency


def _device_latency(stream) -> float:
    """The device's part of in to out: a duplex stream's input plus output latency (their sum,
    not the larger), one direction's for a one-way stream."""
    lat = stream.latency
    return float(sum(lat)) if isinstance(lat, (tuple, list)) else float(lat)


def _close_stream(stream, *, timeout: float) -> bool:
    """Abort and close the stream from a helper thread; False if it did not finish in time."""
    def close() -> None:
        try:
            stream.abort()
            stream.close()
        except Exception:  # the device may already be gone; nothing else to do
            pass

    t = threading.Thread(target=close, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive()
