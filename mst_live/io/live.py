"""Running the engine live: device callback <-> rings <-> worker thread <-> engine.

The callback copies between the device and two preallocated rings and counts problems; the
worker resamples (dsp.resample, streaming, 3 ms each way) between the device rate and the
engine's, runs the engine against a deadline taken from how much audio the output ring still
holds, and feeds the ring back. The main thread only draws the status and waits for Ctrl-C,
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
from .audio import DeviceError, History, Ring, _sd, find_device
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
                 input_channels: tuple[int, ...] = (0,), compute_blocks: float = 1.0) -> None:
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
        self.in_ring = Ring(int(device_rate * 8), channels=max(self.in_channels) + 1)
        self.out_ring = Ring(int(device_rate * 8) + self.prime)
        self.out_ring.write(np.zeros(self.prime, np.float32))
        self.history = History(self.delay + (1 << 16))  # the dry input, for underruns
        self._mono = np.zeros(1 << 16, np.float32)
        self._dry = np.zeros(1 << 16, np.float32)
        self._scratch = np.zeros(FADE, np.float32)
        self._up = np.linspace(0.0, 1.0, FADE + 2, dtype=np.float32)[1:-1]
        self._down = self._up[::-1].copy()
        self._on_dry = False
        self._last = np.float32(0.0)  # the last sample sent, for a fade to dry with no styled sample to fade
        self.underruns = 0  # callbacks that found the output ring short: the worker was late
        self.owed = 0  # samples the callback filled with dry input instead (callback writes)
        self.dropped = 0  # of those, styled samples the worker has since thrown away (worker writes)
        self.overruns = 0  # input ring full: the worker fell behind
        self.xruns = 0  # the device reported a late callback (host scheduling)
        self.callbacks = 0
        self.frames_in = 0  # device input frames captured
        self.in_peak = 0.0
        self.out_peak = 0.0
        self.running = True
        self.capturing = True  # cleared first at the end, so a take holds exactly what was captured
        self.input_done = False  # a file input is fully queued: the ring may now run empty
        self.finished = threading.Event()
        self.error: str | None = None

    # ---------------------------------------------------------------- audio thread
    def callback(self, indata, outdata, frames, time_info, status) -> None:
        """Copies, and on an underrun a short in-place cross-fade. Never allocates buffers, waits,
        logs or touches a file."""
        self.callbacks += 1
        if status.input_overflow or status.output_underflow:
            self.xruns += 1
        if indata is not None and self.capturing:
            self.frames_in += frames
            width = self.in_ring.channels
            if self.in_ring.write(indata[:, 0] if width == 1 else indata[:, :width]) < frames:
                self.overruns += 1
            if outdata is not None:
                self.history.write(indata[:, self.in_channels[0]])
        if outdata is not None:
            mono = self._mono[:frames]
            got = self.out_ring.read_into(mono)
            if got < frames and self.running and not self.input_done:
                # late: what is missing becomes the dry input at the same delay, and the styled
                # samples for these slots are dropped when they arrive, so the latency stays put
                self.underruns += 1
                self.owed += frames - got
                self._to_dry(mono, got, indata is not None)
            elif got < frames:
                mono[got:] = 0.0  # a file input has ended
            elif self._on_dry:
                self._from_dry(mono)
            outdata[:] = mono[:, None]
            self._last = mono[frames - 1] if frames else self._last

    def _to_dry(self, mono: np.ndarray, got: int, have_input: bool) -> None:
        n = mono.shape[0]
        if not have_input:
            mono[got:] = 0.0
            return
        dry = self._dry[:n]
        self.history.read_delayed(dry, self.delay)
        if self._on_dry:  # still on the dry input: the styled samples that came in time for the
            mono[:] = dry  # start of this block are let go, so that the way back is one fade, in a full block
        elif got >= FADE:  # cross-fade from the last styled samples to the dry ones
            mono[got:] = dry[got:]
            mono[got - FADE : got] *= self._down
            np.multiply(dry[got - FADE : got], self._up, out=self._scratch)
            mono[got - FADE : got] += self._scratch
        else:  # too few styled samples to fade out of: the step to the dry input glides away instead
            f = min(FADE, n - got)
            step = (mono[got - 1] if got else self._last) - dry[got]
            mono[got:] = dry[got:]
            np.multiply(self._down[:f], step, out=self._scratch[:f])
            mono[got : got + f] += self._scratch[:f]
        self._on_dry = True

    def _from_dry(self, mono: np.ndarray) -> None:
        n = mono.shape[0]
        f = min(FADE, n)
        dry = self._dry[:f]
        self.history.read_delayed(dry, self.delay + n - f)  # the first f of this block's dry samples
        mono[:f] *= self._up[:f]
        np.multiply(dry, self._down[:f], out=self._scratch[:f])
        mono[:f] += self._scratch[:f]
        self._on_dry = False

    def input_only_callback(self, indata, frames, time_info, status) -> None:
        self.callback(indata, None, frames, time_info, status)

    def output_only_callback(self, outdata, frames, time_info, status) -> None:
        self.callback(None, outdata, frames, time_info, status)

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
    # the callback needs the GIL: do not let the worker hold it for Python's default 5 ms
    sys.setswitchinterval(2e-4)
    # everything alive now (weights, buffers, modules) leaves the collector's view, so that a
    # collection that happens to start in the callback thread stays short
    gc.collect()
    gc.freeze()
    mode = latency_mode(getattr(args, "latency", "normal"))
    runner = LiveRunner(engine, device_rate=device_rate, input_channels=channels_in,
                        compute_blocks=mode.compute_blocks)
    events = EventLog(args.events)
    engine.params.on_change(lambda name, value: events.emit("param", name=name, value=value))
    try:
        midi = _open_midi(args, engine, events)  # before any device is touched: a bad port fails first
    except MstError:
        events.close()
        raise
    # a take: the mic to a file, or --record beside the device; lined up with what was played
    take_path = args.output if output_is_file else getattr(args, "record", None)
    take = Take(take_path, engine, args.channels) if take_path and in_dev is not None else None
    n_in = max(channels_in) + 1

    try:
        if in_dev is not None and out_dev is not None:
            stream = sd.Stream(samplerate=device_rate, channels=(n_in, args.channels), dtype="float32",
                               device=(in_dev, out_dev), callback=runner.callback, blocksize=blocksize)
            worker = threading.Thread(target=runner.work_from_ring, args=(runner.to_device, take), daemon=True)
        elif out_dev is not None:
            stream = sd.OutputStream(samplerate=device_rate, channels=args.channels, dtype="float32",
                                     device=out_dev, callback=runner.output_only_callback, blocksize=blocksize)
            worker = threading.Thread(target=runner.work_from_file, args=(args.input,), daemon=True)
        else:
            stream = sd.InputStream(samplerate=device_rate, channels=n_in, dtype="float32", device=in_dev,
                                    callback=runner.input_only_callback, blocksize=blocksize)
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
                    resampler_holdback_ms=round(1000 * runner.holdback / device_rate, 1))
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

