"""Playing live: the command line's live run wired together. Devices and rings (io.live), the
engine, MIDI, stdin control, the status screen and the event log; io/ knows none of the rest."""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from collections.abc import Callable
from functools import partial

from ..compute import cpu_threads
from ..engine import StyleEngine
from ..errors import MstError, ParameterError
from ..io import device_callback as dc
from ..io.audio import DeviceError, find_device
from ..io.engine_thread import EngineThread
from ..io.live import STALL_S, LiveRunner, _close_stream, _device_latency
from ..io.portaudio import check_sounddevice, raw_stream
from ..io.render import Take
from ..latency import latency_mode
from ..ui.events import EventLog
from ..ui.status import StatusScreen


def run_live(args: argparse.Namespace, make_engine: Callable[[], StyleEngine], *, input_is_file: bool,
             output_is_file: bool) -> int:
    """Run until Ctrl-C, SIGTERM, the end of a file input or a device failure.

    The devices are looked up before ``make_engine`` builds the engine (seconds of weight
    generation), so a wrong device name is refused at once. (File to file never comes here.)
    """
    sd = check_sounddevice()  # now, not after seconds of weight generation
    in_dev = None if input_is_file else find_device(args.input, "input")
    out_dev = None if output_is_file else find_device(args.output, "output")
    channels_in = _input_channels(args, sd, in_dev)
    rate_dev = out_dev if out_dev is not None else in_dev
    device_rate = int(sd.query_devices(rate_dev)["default_samplerate"])
    blocksize = getattr(args, "blocksize", 0) or 0
    engine = make_engine()
    worker = EngineThread(engine)
    worker.warm_up()
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
        midi = _open_midi(args, engine, events)  # before any device is touched (the port was found at the argument check)
    except MstError:
        events.close()
        raise
    # a take: the mic to a file, or --record beside the device; lined up with what was played
    take_path = args.output if output_is_file else getattr(args, "record", None)
    take = Take(take_path, engine, args.channels) if take_path and in_dev is not None else None

    try:
        # the compiled callback (device_callback.CALLBACK) with the runner's shared memory as its
        # user data: PortAudio calls machine code that never enters Python
        common = dict(samplerate=device_rate, blocksize=blocksize, callback=dc.CALLBACK, user_data=runner.state.address)
        if in_dev is not None and out_dev is not None:
            stream = raw_stream("duplex", channels=(runner.width, args.channels), device=(in_dev, out_dev), **common)
            job = partial(runner.work_from_ring, runner.to_device, take)
        elif out_dev is not None:
            stream = raw_stream("output", channels=args.channels, device=out_dev, **common)
            job = partial(runner.work_from_file, args.input)
        else:
            stream = raw_stream("input", channels=runner.width, device=in_dev, **common)
            job = partial(runner.work_from_ring, lambda y: None, take)
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
        worker.start(job)
        device_latency = _device_latency(stream)
        events.emit("start", device_rate=device_rate, latency_ms=round(1000 * runner.latency_s(device_latency), 1),
                    engine_latency_ms=round(1000 * engine.latency / engine.sample_rate, 1),
                    device_latency_ms=round(1000 * device_latency, 1),
                    buffer_ms=round(1000 * runner.prime / device_rate, 1),
                    resampler_holdback_ms=round(1000 * runner.holdback / device_rate, 1),
                    callback_memory_locked=runner.state.locked, network=engine.compute.describe(), threads=cpu_threads(),
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


def _status(engine: StyleEngine, runner: LiveRunner, device_latency: float) -> dict:
    """The engine's status with the live side's latency, ring counters, headroom and meters."""
    recent, lowest = runner.headroom_s()
    return {
        **engine.status(),
        "latency_ms": round(1000 * runner.latency_s(device_latency), 1),
        "underruns": runner.underruns,
        "overruns": runner.overruns,
        "xruns": runner.xruns,
        "headroom_ms": None if recent is None else round(1000 * recent, 1),
        "lowest_headroom_ms": None if lowest is None else round(1000 * lowest, 1),
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

