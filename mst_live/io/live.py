"""Running the engine live: device callback <-> rings <-> worker thread <-> engine.

The device callback is compiled (io.device_callback): it copies between the device and two
preallocated rings, fades to the dry input when the worker is late, and counts problems, all
without entering Python. The worker resamples (dsp.resample, streaming, 3 ms each way) between
the device rate and the engine's, runs the engine against a deadline taken from how much audio
the output ring still holds, and feeds the ring back. The main thread only draws the status and waits for Ctrl-C,
SIGTERM, the end of a file input, or a device failure.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from ..dsp.resample import StreamingResampler
from ..engine import StyleEngine
from ..errors import MstError, ParameterError
from ..latency import latency_mode
from ..ui.events import EventLog
from ..ui.status import StatusScreen
from . import device_callback as dc
from .audio import DeviceError, _sd, find_device
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


def run_live(args: argparse.Namespace, make_engine: Callable[[], StyleEngine], *, input_is_file: bool,
             output_is_file: bool) -> int:
    """Run until Ctrl-C, SIGTERM, the end of a file input or a device failure.

    The devices are looked up before ``make_engine`` builds the engine (seconds of weight
    generation), so a wrong device name is refused at once. (File to file never comes here.)
    """
    sd = _sd()
    in_dev = None if input_is_file else find_device(args.input, "input")
    out_dev = None if output_is_file else find_device(args.output, "output")
    channels_in = _input_channels(args, sd, in_dev)
    rate_dev = out_dev if out_dev is not None else in_dev
    device_rate = int(sd.query_devices(rate_dev)["default_samplerate"])
    blocksize = getattr(args, "blocksize", 0) or 0
    engine = make_engine()
    engine.warm_up()
    # everything alive now (weights, buffers, modules) leaves the collector's view, so that a
    # collection in the worker stays short (the device callback never runs Python)
    gc.collect()
    gc.freeze()
    mode = latency_mode(getattr(args, "latency", "normal"))
    runner = LiveRunner(engine, device_rate=device_rate, input_channels=channels_in,
                        compute_blocks=mode.compute_blocks, has_input=in_dev is not None,
                        out_channels=0 if out_dev is None else args.channels)
    events = EventLog(args.events)
    given_up = engine.fit(min(1.0, mode.compute_blocks) * engine.block_frames * engine.settings.hop_length / engine.sample_rate)
    if given_up:
        print(f"mst-live: warning: {given_up}", file=sys.stderr, flush=True)
        events.emit("warning", message=given_up)
    engine.params.on_change(lambda name, value: events.emit("param", name=name, value=value))
    try:
        midi = _open_midi(args, engine, events)  # before any device is touched: a bad port fails first
    except MstError:
        events.close()
        raise
    # a take: the mic to a file, or --record beside the device; lined up with what was played
    take_path = args.output if output_is_file else getattr(args, "record", None)
    take = Take(take_path, engine, args.channels) if take_path and in_dev is not None else None

    try:
        # the compiled callback (device_callback.CALLBACK) with the runner's shared memory as its
        # user data: PortAudio calls machine code that never enters Python
        common = dict(samplerate=device_rate, dtype="float32", blocksize=blocksize, callback=dc.CALLBACK,
                      userdata=sd._ffi.cast("void *", runner.state.address))
        if in_dev is not None and out_dev is not None:
            stream = sd._StreamBase("duplex", channels=(runner.width, args.channels), device=(in_dev, out_dev), **common)
            worker = threading.Thread(target=runner.work_from_ring, args=(runner.to_device, take), daemon=True)
        elif out_dev is not None:
            stream = sd._StreamBase("output", channels=args.channels, device=out_dev, **common)
            worker = threading.Thread(target=runner.work_from_file, args=(args.input,), daemon=True)
        else:
            stream = sd._StreamBase("input", channels=runner.width, device=in_dev, **common)
            worker = threading.Thread(target=runner.work_from_ring, args=(lambda y: None, take), daemon=True)
    except sd.PortAudioError as exc:
        events.emit("error", message=str(exc))
        events.close()
        if take is not None:
            take.close()
        raise DeviceError(f"cannot open the audio device: {exc}") from None

    control = _start_stdin_control(engine, events) if getattr(args, "control_stdin", False) else None
    screen = StatusScreen(enabled=not args.live_quiet)
    interrupted = False
    err = None
    fields: dict = {}
    device_latency = 0.0
    reported = None
    try:
        stream.start()
        worker.start()
        device_latency = _device_latency(stream)
        events.emit("start", device_rate=device_rate, latency_ms=round(1000 * runner.latency_s(device_latency), 1),
                    engine_latency_ms=round(1000 * engine.latency / engine.sample_rate, 1),
                    device_latency_ms=round(1000 * device_latency, 1),
                    buffer_ms=round(1000 * runner.prime / device_rate, 1),
                    resampler_holdback_ms=round(1000 * runner.holdback / device_rate, 1),
                    callback_memory_locked=runner.state.locked, network=engine.compute.describe(),
                    precision=engine.compute.precision, device=str(engine.device))
        last_underruns = 0
        last_calls, last_call_t = -1, time.monotonic()
        with screen:
            while not runner.finished.wait(0.25):
                now = time.monotonic()
                if runner.callbacks != last_calls:
                    last_calls, last_call_t = runner.callbacks, now
                elif now - last_call_t > STALL_S:
                    err = f"the audio device stopped calling back for {now - last_call_t:.1f} s (hung or disconnected)"
                    events.emit("error", message=err)  # now, before a shutdown that may wait on the device
                    reported = err
                    break
                if not stream.active:
                    err = "the audio device stopped (disconnected or failed)"
                    break
                fields = _status(engine, runner, device_latency)
                screen.update(fields)
                events.status(fields)
                if runner.underruns > last_underruns:
                    events.emit("underrun", count=runner.underruns, dropped_ms=round(1000 * runner.owed / device_rate, 1))
                    last_underruns = runner.underruns
        if runner.error:
            err = runner.error
    except KeyboardInterrupt:
        interrupted = True
    except sd.PortAudioError as exc:
        err = f"audio device error: {exc}"
    except Exception as exc:  # anything else still gets the bounded shutdown below, an event and one line
        err = f"{type(exc).__name__}: {exc}"
    finally:
        # bounded shutdown, most precious first: the worker stops and finishes the take (all
        # that was played, to the end), the take is closed (a valid file), then the device is
        # let go of, with a time limit
        runner.capturing = False
        runner.running = False
        worker.join(timeout=10)
        if take is not None:
            take.close()
        if not _close_stream(stream, timeout=5.0):
            err = err or "the audio device did not close in time"
        fields = _status(engine, runner, device_latency)
        events.status(fields, force=True)
        if err and err != reported:
            events.emit("error", message=err)
        events.close()
        if control is not None:
            control.stop = True
        if midi is not None:
            midi.close()
    summary = (f"{'interrupted' if interrupted else 'stopped'}: {engine.stats.blocks} blocks, "
               f"{fields['steps_per_block']:.1f} steps/block, load {fields['load']:.2f}, "
               f"{runner.underruns} underruns, {runner.overruns} overruns, {runner.xruns} device xruns")
    print(summary, file=sys.stderr)
    if err:
        raise DeviceError(err)
    return 130 if interrupted else 0


def _input_channels(args: argparse.Namespace, sd, in_dev: int | None) -> tuple[int, ...]:
    """--input-channel N or N,M (1-based) as 0-based device channels, checked against the device."""
    spec = getattr(args, "input_channel", None) or "1"
    try:
        chans = tuple(int(c) - 1 for c in str(spec).split(",") if c.strip())
    except ValueError:
        raise ParameterError(f"--input-channel {spec}: give a channel number or a list such as 1,2") from None
    if not chans or min(chans) < 0:
        raise ParameterError(f"--input-channel {spec}: channels count from 1")
    if in_dev is not None:
        have = int(sd.query_devices(in_dev)["max_input_channels"])
        if max(chans) >= have:
            raise ParameterError(f"--input-channel {spec}: the input device has {have} channel(s)")
    return chans


def _device_latency(stream) -> float:
    """The device's part of in to out: a duplex stream's input plus output latency (their sum,
    not the larger), one direction's for a one-way stream."""
    lat = stream.latency
    return float(sum(lat)) if isinstance(lat, (tuple, list)) else float(lat)


def _open_midi(args: argparse.Namespace, engine: StyleEngine, events: EventLog):
    """--midi: the controller, with --midi-map or the default mapping; None without --midi."""
    if not getattr(args, "midi", None):
        return None
    from ..midi.controller import MidiController
    from ..midi.mapping import default_mapping, load_mapping

    mapping = load_mapping(args.midi_map) if args.midi_map else default_mapping(morph=engine.morph_preset is not None)
    midi = MidiController(args.midi, mapping, engine.params, n_presets=len(engine.presets))
    events.emit("midi", port=midi.port_name, rules=len(mapping.rules))
    return midi


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


def _status(engine: StyleEngine, runner: LiveRunner, device_latency: float) -> dict:
    """The engine's status with the live side's latency, ring counters and meters."""
    return {
        **engine.status(),
        "latency_ms": round(1000 * runner.latency_s(device_latency), 1),
        "underruns": runner.underruns,
        "overruns": runner.overruns,
        "xruns": runner.xruns,
        "input_s": round(runner.frames_in / runner.rate, 4),
        "in_peak": round(runner.in_peak, 4),
        "out_peak": round(runner.out_peak, 4),
    }


class _StdinControl(threading.Thread):
    """`--control-stdin`: lines of 'NAME VALUE' set live parameters (for scripts and tests)."""

    def __init__(self, engine: StyleEngine, events: EventLog) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.events = events
        self.stop = False

    def run(self) -> None:
        from ..errors import MstError

        for line in sys.stdin:
            if self.stop:
                return
            parts = line.split()
            if len(parts) != 2:
                continue
            try:
                self.engine.params.set(parts[0].replace("-", "_"), float(parts[1]))
            except (MstError, ValueError) as exc:
                self.events.emit("error", message=str(exc))


def _start_stdin_control(engine: StyleEngine, events: EventLog) -> _StdinControl:
    t = _StdinControl(engine, events)
    t.start()
    return t

