"""The command line: parses, calls the library, prints. Errors become one line, never a traceback."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import warnings
from pathlib import Path

from .errors import MstError, ParameterError

DEMO_CLIP = Path(__file__).resolve().parent.parent / "presets" / "demo.flac"
DEMO_STRONG = 4.0  # the demo's second render: the style's own sound playing the clip's notes


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other error
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Renamed(argparse.Action):
    """An option's old spelling, kept for one release: it sets the new option and says its name."""

    def __init__(self, option_strings, dest, *, new: str, **kwargs) -> None:
        self.new = new
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        print(f"mst-live: {option_string} is now {self.new} (the old name goes in the next release)", file=sys.stderr)


def _renamed(g, old: str, new: str, **kwargs) -> None:
    """``new`` as the option, ``old`` as its hidden alias (`_Renamed`)."""
    action = g.add_argument(new, **kwargs)
    g.add_argument(old, dest=action.dest, action=_Renamed, new=new, type=kwargs.get("type"), metavar=action.metavar,
                   default=argparse.SUPPRESS)


def _settings_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("analysis and network (must match wherever the preset is used)")
    g.add_argument("--sample-rate", type=int, default=22050, help="rate the style is analysed at, Hz (22050)")
    g.add_argument("--n-fft", type=int, default=2048, help="STFT window in samples (2048; --latency low: 512)")
    g.add_argument("--hop", type=int, default=512, help="STFT hop in samples (512; --latency low: 128)")
    g.add_argument("--filters", type=int, default=4000, help="random network filters (4000; --latency low: 1024)")
    g.add_argument("--width", type=int, default=11, help="network filter width in STFT frames (11)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random network (0)")
    g.add_argument("--network", choices=("structured", "dense"), default="structured",
                   help="structured: seeded sign flips between Walsh-Hadamard transforms, fast and nothing stored; "
                   "dense: Gaussian weights, the original algorithm (structured)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mst-live",
        description="Real-time music style transfer: hear what you play in the style of other music.",
    )
    parser.add_argument("--version", action="version", version="mst-live 0.1.0")
    _engine_args(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    pp = sub.add_parser("preset", help="build or inspect style presets")
    psub = pp.add_subparsers(dest="preset_command", metavar="ACTION", parser_class=_Parser)
    pb = psub.add_parser("build", help="build a preset from style tracks (files or folders)")
    pb.add_argument("styles", nargs="+", metavar="STYLE", help="audio files or folders of them")
    pb.add_argument("-o", "--output", required=True, help="preset file to write (.npz)")
    pb.add_argument("--energy", type=float, default=0.9999, help="fraction of the Gram's energy kept (0.9999)")
    pb.add_argument("--quiet", action="store_true", help="no progress bar")
    _compute_args(pb)
    _settings_args(pb)
    pi = psub.add_parser("info", help="print everything a preset holds")
    pi.add_argument("preset", help="preset file or shipped preset name")

    pt = sub.add_parser("transfer", help="offline whole-clip transfer (the quality reference)")
    pt.add_argument("content", help="audio file to restyle")
    pt.add_argument("--preset", required=True, help="preset file or shipped preset name (jazz, ...)")
    pt.add_argument("-o", "--output", required=True, help="audio file to write (wav, flac, ogg)")
    _transfer_args(pt)

    pr = sub.add_parser("resynth", help="drop the phase of a file and rebuild it (hear the phase reconstruction alone)")
    pr.add_argument("input", help="audio file")
    pr.add_argument("-o", "--output", required=True, help="audio file to write (wav, flac, ogg)")
    pr.add_argument("--offline", action="store_true", help="whole-file fast Griffin-Lim instead of the streaming one")
    pr.add_argument("--iters", type=int, help="iterations: offline total (32), streaming per frame (16)")
    pr.add_argument("--look-ahead", type=int, default=3, help="streaming look-ahead in frames (3)")
    pr.add_argument("--n-fft", type=int, default=2048)
    pr.add_argument("--hop", type=int, default=512)
    pr.add_argument("--sample-rate", type=int, default=22050)

    sub.add_parser("devices", help="list audio devices with their host API")
    pm = sub.add_parser("midi", help="list MIDI input ports, or learn a mapping")
    msub = pm.add_subparsers(dest="midi_command", metavar="ACTION", parser_class=_Parser)
    ml = msub.add_parser("learn", help="move each control when asked; writes a mapping file")
    ml.add_argument("--midi", required=True, metavar="PORT", help="MIDI input port name (substring)")
    ml.add_argument("-o", "--output", required=True, help="mapping file to write (.toml)")
    ml.add_argument("--timeout", type=float, default=30.0,
                    help="seconds to wait for each control (30); Enter skips one sooner")

    pd = sub.add_parser("demo", help="run the streaming engine on the shipped preset and demo clip")
    pd.add_argument("--out", default="out", help="folder for the results (out/)")
    pd.add_argument("--preset", default="jazz", help="preset (jazz)")
    return parser


def _engine_args(p: argparse.ArgumentParser) -> None:
    from .latency import MODES
    from .params import PARAMS

    g = p.add_argument_group("live style transfer (no COMMAND): mst-live --preset jazz --input mic")
    g.add_argument("--preset", dest="live_preset", metavar="PRESET",
                   help="preset file or shipped name (jazz, strings, rock, chiptune); several, comma-separated, "
                   "for MIDI program change to choose from")
    g.add_argument("--morph-preset", metavar="PRESET", help="a second style to blend toward (the morph parameter)")
    g.add_argument("--midi", metavar="PORT", help="MIDI input port name (substring); mst-live midi lists them")
    g.add_argument("--midi-map", metavar="FILE", help="MIDI mapping file (TOML) instead of the default mapping")
    g.add_argument("--input", default="mic", help="mic (default input), a device index or name, or an audio file")
    g.add_argument("--output", default=None,
                   help="a device index or name, or an audio file (default: the default output device)")
    for par in PARAMS.values():
        if not par.cli:
            continue
        if par.kind == "flag":
            g.add_argument(par.flag, action="store_const", const=1, default=0, help=par.help)
        else:
            kind = int if par.kind == "int" else float
            g.add_argument(par.flag, type=kind, default=par.default,
                           help=f"{par.help} ({par.default:g}, range {par.lo:g}..{par.hi:g})")
    g.add_argument("--follow", type=float, default=1.0,
                   help="how far the output's dynamics follow the input's, 0..1; it steps aside as the style's "
                        "own sound takes over above style weight 1 (1)")
    g.add_argument("--phase", choices=("input", "rebuild"), default="input",
                   help="input: the new magnitudes over the input's own phase, which keeps attacks and notes "
                   "(input; the style's own sound above style weight 1 always gets a rebuilt one); rebuild: a phase "
                   "rebuilt for them, which lets a style unlike the input (a pad, a drone) form its own sustained tones")
    g.add_argument("--latency", choices=("normal", "low"), default="normal",
                   help=f"normal: full-size analysis in {MODES['normal'].block_frames}-frame blocks, under 500 ms in to out; "
                   f"low: a 512-point analysis and smaller network in {MODES['low'].block_frames}-frame blocks, under "
                   "200 ms (needs a preset built for it, such as jazz-low)")
    g.add_argument("--block-frames", type=int, default=None,
                   help=f"STFT frames optimised together ({MODES['normal'].block_frames}; "
                   f"{MODES['low'].block_frames} with --latency low)")
    _compute_args(g, device_dest="live_device")
    _threads_arg(g)
    g.add_argument("--channels", type=int, choices=(1, 2), default=1, help="output channels (1)")
    g.add_argument("--input-channel", metavar="N[,M...]", default="1",
                   help="input device channel to play into it, from 1; several, comma-separated, are mixed (1)")
    _renamed(g, "--blocksize", "--device-blocksize", dest="blocksize", type=int, default=0, metavar="FRAMES",
             help="audio device buffer in frames (0: the device's choice); smaller is less latency, more xrun risk")
    g.add_argument("--record", metavar="FILE",
                   help="also record the styled output to this audio file while it plays (lined up with the input)")
    g.add_argument("--realtime", action="store_true", help="pace a file input like a live device")
    g.add_argument("--events", help="write status and events as JSON lines to this file (replaced: one run a file)")
    g.add_argument("--quiet", dest="live_quiet", action="store_true", help="no status display")
    g.add_argument("--control-stdin", action="store_true",
                   help="read 'NAME VALUE' lines on stdin to change parameters live (for scripts)")


PRECISION_HELP = (
    "network arithmetic: the structured network (every shipped preset) runs in float32. For a dense preset, "
    "auto (the default) takes bfloat16 on a CUDA GPU; on a CPU the fastest, by a short "
    "measurement at start, of int8 weights, float16 weights, float32 and, only where the CPU multiplies it "
    "natively (AVX512-BF16, AMX), bfloat16. The choice and why are printed when the run starts")


def _compute_args(g, *, device_dest: str = "device") -> None:
    from .settings import PRECISIONS

    _renamed(g, "--device", "--compute-device", dest=device_dest, metavar="DEVICE", default="auto",
             help="where the network runs: cpu, cuda, mps or auto: CUDA, then Apple's MPS, then the CPU (auto)")
    g.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)


def _threads_arg(g) -> None:
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for the network: 1 for a device run (each step takes a bounded time even when "
                   "other programs load the CPU), one a core for a file to file render")


def _network_line(choice) -> str:
    from .compute import cpu_threads

    n = cpu_threads() if choice.device.type == "cpu" else 0
    return f"network: {choice.describe()}" + (f", {n} thread{'s' if n > 1 else ''}" if n else "")


def _transfer_args(p: argparse.ArgumentParser, *, iters: int = 300) -> None:
    p.add_argument("--iters", type=int, default=iters,
                   help=f"about this many L-BFGS iterations per 30 s segment ({iters}): each segment may evaluate "
                        f"its loss N + N/4 + 1 times, room for line-search retries; the last line counts the "
                        f"evaluations made")
    p.add_argument("--phase-iters", type=int, default=32,
                   help="phase reconstruction passes per frame, streaming Griffin-Lim with 3 frames of look-ahead (32)")
    p.add_argument("--style-weight", type=float, default=1.0, help="style term weight (1.0)")
    p.add_argument("--content-weight", type=float, default=1e-2, help="content term weight α (0.01)")
    p.add_argument("--init", choices=("content", "noise"), default="content", help="start from (content)")
    p.add_argument("--picture", help="also write a spectrogram picture (PNG) of the first 30 s")
    _compute_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_preset_build(args: argparse.Namespace) -> int:
    from .build import build_preset
    from .compute import choose
    from .features import FeatureNet
    from .settings import Settings
    from .ui.progress import progress_bar

    settings = Settings(
        sample_rate=args.sample_rate, n_fft=args.n_fft, hop_length=args.hop,
        n_filters=args.filters, width=args.width, seed=args.seed, network=args.network,
    )
    from .io.paths import check_ending

    out = check_ending(args.output, ".npz", option="-o")
    t0 = time.perf_counter()
    chosen = choose(args.device, args.precision, network=settings.network, option="--precision",
                    device_option="--compute-device")
    print(_network_line(chosen), flush=True)
    net = FeatureNet(settings, device=chosen.device, precision=chosen.precision)
    with progress_bar("building preset", quiet=args.quiet) as update:
        preset = build_preset(args.styles, settings=settings, energy=args.energy, net=net, progress=update)
    preset.save(out)
    took = time.perf_counter() - t0
    audio_s = preset.n_frames * settings.hop_length / settings.sample_rate
    print(f"wrote {out}: rank {preset.rank}, {out.stat().st_size / 1024:.0f} KiB, "
          f"{audio_s:.1f} s of style in {took:.1f} s ({audio_s / took:.0f}x real time)")
    return 0


def _cmd_preset_info(args: argparse.Namespace) -> int:
    from .preset import load_preset, resolve_preset_path

    print(load_preset(resolve_preset_path(args.preset)).describe())
    return 0


def _run_transfer(content_path: str, preset_name: str, output: Path, args: argparse.Namespace) -> int:
    from .compute import choose
    from .features import FeatureNet
    from .io.files import audio_info, iter_mono_blocks, open_output
    from .io.paths import check_audio_output, check_ending
    from .preset import load_preset, resolve_preset_path
    from .transfer import check_transfer_args, transfer_stream
    from .ui.progress import progress_bar

    # the options, everything that will be written, then everything read, before any work
    check_transfer_args(args.iters, args.style_weight, args.content_weight, args.init, 30.0, args.phase_iters)
    check_audio_output(output, option="-o")
    if args.picture:
        check_ending(args.picture, ".png", option="--picture")
    frames, rate = audio_info(content_path)
    preset = load_preset(resolve_preset_path(preset_name))
    s = preset.settings
    chosen = choose(args.device, args.precision, network=s.network, option="--precision", device_option="--compute-device")
    t0 = time.perf_counter()
    print(_network_line(chosen), flush=True)
    net = FeatureNet(s, device=chosen.device, precision=chosen.precision)
    total = round(frames * s.sample_rate / rate)
    out = open_output(output, s.sample_rate)
    try:
        with progress_bar(f"transfer to {preset.name}", quiet=args.quiet) as update:
            stats = transfer_stream(
                iter_mono_blocks(content_path, s.sample_rate), preset, out.write, n_iter=args.iters,
                style_weight=args.style_weight, content_weight=args.content_weight, init=args.init,
                phase_iters=args.phase_iters, net=net, total_samples=total, progress=update,
            )
    finally:
        out.close()  # a valid file holding what was done, whatever happened
    took = time.perf_counter() - t0
    if args.picture and not stats.interrupted:
        from .ui.plot import comparison_picture

        comparison_picture(args.picture, content_path, [("output", output)], preset)
    state = "interrupted; wrote what was done" if stats.interrupted else "done"
    print(f"{state}: {output} ({stats.samples / s.sample_rate:.1f} s of audio, {stats.evaluations} evaluations, "
          f"{took:.1f} s)")
    return 130 if stats.interrupted else 0


def _cmd_transfer(args: argparse.Namespace) -> int:
    return _run_transfer(args.content, args.preset, Path(args.output), args)


def _cmd_resynth(args: argparse.Namespace) -> int:
    import numpy as np

    from .dsp.griffinlim import griffinlim, spectral_convergence
    from .dsp.stft import stft
    from .dsp.streaming_gl import StreamingGriffinLim
    from .io.files import read_mono, write_audio
    from .io.paths import check_audio_output
    from .settings import Settings

    s = Settings(sample_rate=args.sample_rate, n_fft=args.n_fft, hop_length=args.hop)
    output = check_audio_output(args.output, option="-o")
    y = read_mono(args.input, s.sample_rate)
    mag = np.abs(stft(y, n_fft=s.n_fft, hop_length=s.hop_length))
    t0 = time.perf_counter()
    if args.offline:
        iters = 32 if args.iters is None else args.iters
        out = griffinlim(mag, n_iter=iters, hop_length=s.hop_length, length=y.size, random_state=0)
        how = f"offline fast Griffin-Lim, {iters} iterations"
    else:
        iters = 16 if args.iters is None else args.iters
        gl = StreamingGriffinLim(n_fft=s.n_fft, hop_length=s.hop_length, n_iter=iters, look_ahead=args.look_ahead)
        block = 8  # frames per push, as a live engine would feed it
        parts = [gl.push(mag[:, i : i + block]) for i in range(0, mag.shape[1], block)]
        out = np.concatenate([*parts, gl.flush(length=y.size)])
        how = (f"streaming, {iters} iterations x {args.look_ahead + 1} frames, "
               f"latency {1000 * gl.latency / s.sample_rate:.0f} ms")
    took = time.perf_counter() - t0
    write_audio(output, out, s.sample_rate)
    sc = spectral_convergence(out, mag, n_fft=s.n_fft, hop_length=s.hop_length)
    print(f"wrote {output}: {how}; spectral convergence {sc:.1f} dB; "
          f"{took:.2f} s for {y.size / s.sample_rate:.1f} s of audio")
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from .io.audio import list_devices

    print(list_devices())
    return 0


def _lines_typed():
    """A queue that gets one item for each line typed on stdin, read on a daemon thread."""
    import queue
    import threading

    lines: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        for _ in sys.stdin:
            lines.put(True)

    threading.Thread(target=read, daemon=True, name="mst-live-stdin").start()
    return lines


def _cmd_midi(args: argparse.Namespace) -> int:
    from .midi.controller import input_names, learn
    from .midi.mapping import CCRule, Mapping, dump_mapping
    from .params import PARAMS

    if args.midi_command is None:
        names = input_names()
        print("\n".join(names) if names else "no MIDI input ports")
        return 0
    from .io.paths import check_ending

    out = check_ending(args.output, ".toml", option="-o")
    wanted = [p.name for p in PARAMS.values() if p.learn]
    skips = _lines_typed()

    def ask(param: str) -> None:
        par = PARAMS[param]
        print(f"move the control for {param} ({par.help}; {par.lo:g}..{par.hi:g}), "
              f"or press Enter or wait {args.timeout:g} s to skip", flush=True)

    def skip() -> bool:
        if skips.empty():
            return False
        skips.get_nowait()
        return True

    found = learn(args.midi, wanted, ask=ask, timeout=args.timeout, skip=skip)
    rules = [CCRule(cc=cc, param=param, lo=PARAMS[param].lo, hi=PARAMS[param].hi, curve=PARAMS[param].midi_curve,
                    channel=channel) for param, channel, cc in found]
    out.write_text(dump_mapping(Mapping(rules=rules)))
    print(f"wrote {out}: {len(rules)} control(s)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .io.paths import check_writable
    from .preset import load_preset, resolve_preset_path
    from .ui.plot import comparison_picture

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"--out {out}: cannot make the folder ({exc.strerror})") from None
    wav, strong = (check_writable(out / name, option="--out") for name in ("demo.wav", "demo-strong.wav"))
    png = check_writable(out / "demo.png", option="--out")
    outputs = [("output, style weight 1", wav, "1"), (f"output, style weight {DEMO_STRONG:g}", strong, f"{DEMO_STRONG:g}")]
    print(f"demo: {DEMO_CLIP.name} through the streaming engine with preset '{args.preset}' at style weights 1 and "
          f"{DEMO_STRONG:g} -> {wav}, {strong}, {png}")
    for _, path, weight in outputs:
        live = build_parser().parse_args(["--preset", args.preset, "--input", str(DEMO_CLIP), "--output", str(path),
                                          "--style-weight", weight])
        status = _cmd_live(live)
        if status:
            return status
    comparison_picture(png, DEMO_CLIP, [(label, path) for label, path, _ in outputs],
                       load_preset(resolve_preset_path(args.preset)))
    print(f"wrote {png}")
    return 0


def _engine_from_args(args: argparse.Namespace):
    from .engine import StyleEngine
    from .latency import latency_mode
    from .params import PARAMS, LiveParams
    from .preset import load_preset, resolve_preset_path

    names = [n.strip() for n in args.live_preset.split(",") if n.strip()]
    presets = [load_preset(resolve_preset_path(n)) for n in names]
    morph = load_preset(resolve_preset_path(args.morph_preset)) if args.morph_preset else None
    mode = latency_mode(args.latency)
    for p in [*presets, *([morph] if morph else [])]:
        mode.check_preset(p)
    params = LiveParams(**{name: getattr(args, name) for name in PARAMS if hasattr(args, name)})
    block_frames = mode.block_frames if args.block_frames is None else args.block_frames
    engine = StyleEngine(presets[0], styles=presets[1:], morph=morph, block_frames=block_frames,
                         overlap_frames=mode.overlap_frames, look_ahead=mode.look_ahead, follow=args.follow,
                         phase=args.phase, device=args.live_device, precision=args.precision, params=params)
    for p in engine.styles.without_palette():
        print(f"mst-live: note: {p.path or p.name} has no palette of its own sound: above style weight 1 it "
              f"reshapes only; rebuild it with mst-live preset build to let its instrument in", file=sys.stderr, flush=True)
    return engine


def _check_live_args(args: argparse.Namespace) -> tuple[bool, bool]:
    """Paths to write, then files to read, checked before the engine is built.

    Returns whether the input and the output are files (rather than devices).
    """
    from .io.files import audio_info
    from .io.paths import check_audio_output, check_writable, is_file_spec

    if not args.live_preset:
        raise ParameterError("--preset is required (a preset file or a shipped name such as jazz)")
    input_is_file = is_file_spec(args.input)
    output_is_file = is_file_spec(args.output, output=True)
    if output_is_file:
        check_audio_output(args.output, option="--output")
    if args.events:
        check_writable(args.events, option="--events")
    if args.record:
        if output_is_file or input_is_file:
            raise ParameterError(f"--record {args.record}: records a live device run; file to file, --output is the take")
        check_audio_output(args.record, option="--record")
    if args.realtime and not (input_is_file and output_is_file):
        raise ParameterError("--realtime paces a file to file render like a device; with a device end the device "
                             "sets the pace already")
    if args.blocksize < 0 or args.blocksize > 16384:
        raise ParameterError(f"--device-blocksize {args.blocksize}: give 0 (the device's choice) or 1..16384 frames")
    if input_is_file:
        audio_info(args.input)  # opened and checked now, not after seconds of weight generation
    if args.midi_map:
        from .midi.mapping import load_mapping

        if not args.midi:
            raise ParameterError(f"--midi-map {args.midi_map}: needs --midi PORT, the controller to read")
        load_mapping(args.midi_map)
    if args.midi and not (input_is_file and output_is_file):
        from .midi.controller import find_port

        find_port(args.midi)  # now, not after seconds of weight generation and the warm-up
    return input_is_file, output_is_file


def _cmd_live(args: argparse.Namespace) -> int:
    from .compute import use_threads

    input_is_file, output_is_file = _check_live_args(args)
    use_threads(args.threads, live=not (input_is_file and output_is_file) or args.realtime)
    if input_is_file and output_is_file:
        return _render(args)
    from .app.live import run_live

    try:
        def make_engine():
            engine = _engine_from_args(args)
            print(_network_line(engine.compute), file=sys.stderr, flush=True)
            return engine

        code = run_live(args, make_engine, input_is_file=input_is_file, output_is_file=output_is_file)
    except (Exception, KeyboardInterrupt) as exc:  # whatever it was: one line, then the bounded exit below
        code = _report(exc)
    # Live runs end here and now: no interpreter shutdown that could wait on a device thread or
    # on the --control-stdin reader blocked in readline. Files and events are closed already.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _render(args: argparse.Namespace) -> int:
    """File to file (paths already checked by `_check_live_args`)."""
    from .compute import cpu_threads
    from .io.render import render_file
    from .ui.events import EventLog
    from .ui.progress import progress_bar

    out = Path(args.output)
    engine = _engine_from_args(args)
    print(_network_line(engine.compute), flush=True)
    events = EventLog(args.events)
    events.emit("start", network=engine.compute.describe(), precision=engine.compute.precision, threads=cpu_threads(),
                device=str(engine.device))
    engine.params.on_change(lambda name, value: events.emit("param", name=name, value=value))
    sr = engine.sample_rate

    def status(done: int, total: int) -> dict:
        return {"done_s": round(done / sr, 2), "total_s": round(total / sr, 2), **engine.status()}

    try:
        with progress_bar(f"{Path(args.input).name} -> {out.name}", quiet=args.live_quiet) as update:
            def on_block(done: int, total: int) -> None:
                update(done / sr, total / sr)
                events.status(status(done, total))

            result = render_file(engine, args.input, out, channels=args.channels, realtime=args.realtime,
                                 on_block=on_block)
        events.status(status(result.samples, result.samples), force=True)
    finally:
        events.close()
    st = engine.stats
    audio_s = result.samples / sr
    state = "interrupted; wrote what was done" if result.interrupted else "done"
    print(f"{state}: {out} ({audio_s:.1f} s, {result.seconds:.1f} s wall, load {result.seconds / max(audio_s, 1e-9):.2f}, "
          f"latency {1000 * engine.latency / sr:.0f} ms compensated, {st.evaluations / max(st.blocks, 1):.1f} steps/block, "
          f"{st.underruns} underruns)")
    return 130 if result.interrupted else 0


def _report(exc: BaseException) -> int:
    """Any error as one line on stderr; returns the exit status. Never a traceback (unless
    MST_LIVE_DEBUG is set, for bug reports)."""
    if isinstance(exc, KeyboardInterrupt):
        print("mst-live: interrupted", file=sys.stderr)
        return 130
    if isinstance(exc, MstError):
        print(f"mst-live: error: {exc}", file=sys.stderr)
        return 2
    from .compute import is_out_of_memory

    if is_out_of_memory(exc):
        print("mst-live: error: out of memory (try a shorter input, --precision float16 or int8, "
              "or a preset with fewer filters)", file=sys.stderr)
        return 2
    if os.environ.get("MST_LIVE_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    print(f"mst-live: error: unexpected {type(exc).__name__}: {first} (MST_LIVE_DEBUG=1 shows where)", file=sys.stderr)
    return 1


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"mst-live: warning: {message}", file=sys.stderr)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def argv_given(argv: list[str] | None) -> bool:
    """Whether any option was given at all (a bare `mst-live` gets the help)."""
    return bool(sys.argv[1:] if argv is None else argv)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C must stop a live run even when started from a shell that ignores SIGINT for
    # background jobs (Python installs no handler for a signal it inherits as ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    handlers = {
        ("preset", "build"): _cmd_preset_build,
        ("preset", "info"): _cmd_preset_info,
        ("transfer", None): _cmd_transfer,
        ("resynth", None): _cmd_resynth,
        ("devices", None): _cmd_devices,
        ("midi", None): _cmd_midi,
        ("demo", None): _cmd_demo,
    }
    key = (args.command, getattr(args, "preset_command", None))
    if args.command == "midi":
        key = ("midi", None)
    handler = handlers.get(key)
    if args.command is None and args.live_preset:
        handler = _cmd_live
    if handler is None and args.command is None and argv_given(argv):
        print("mst-live: error: --preset is required to play live (a preset file or a shipped name such as jazz); "
              "mst-live --help lists the commands", file=sys.stderr)
        return 2
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    warnings.showwarning = _warning_line  # a repaired input is one line too
    try:
        return handler(args)
    except (Exception, KeyboardInterrupt) as exc:
        return _report(exc)
