"""Does the output sound like the style, keep the notes, and stay clean? Judged against the
trivial baselines, on real music from sources the engine was never tuned on, and on a test with a
known answer.

Run: .venv/bin/python scripts/bench_quality.py   (writes the 'quality' section of BENCHMARKS.md)
Needs: `make bench-deps` (librosa, basic-pitch's ONNX model, mir_eval), and Debian's archive for
the music (scripts/fetch_music.sh unpacks five freely licensed game soundtracks into .cache/music),
fluidsynth + fluid-soundfont-gm for the known-answer test.
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_measures as qm
from benchmd import ROOT, machine, write_section
from compose import SOUNDFONT, Score, render

from mst_live import FeatureNet, Settings, build_preset, load_preset, transfer
from mst_live.compute import choose
from mst_live.dsp.limiter import PeakLimiter
from mst_live.engine import StyleEngine
from mst_live.io.files import read_mono
from mst_live.latency import MODES
from mst_live.params import PARAMS, LiveParams

BLOCK = MODES["normal"].block_frames  # the engine's block at the defaults
PACKAGES = ["wesnoth-1.16-music", "warzone2100-music", "extremetuxracer-data", "lincity-ng-data", "frozen-bubble-data"]
G = "usr/share/games/"
WZ = G + "warzone2100/music/albums/"
# (label, content file, content at s, style file): 10 s of content; 60 s of style from 30 s in
# build the preset, and 10 s from 95 s in are the held-out style excerpt
PAIRS = [
    ("folk (Wesnoth) ← electronic (Warzone 2100)", G + "wesnoth/1.16/data/core/music/wanderer.ogg", 30.0,
     WZ + "aftermath_soundtrack/track17.opus"),
    ("blues (LinCity) ← techno-pop (Frozen Bubble)", G + "lincity-ng/music/default/02 - Robert van Herk - City Blues.ogg", 40.0,
     G + "frozen-bubble/snd/frozen-mainzik-1p.ogg"),
    ("game pop (Tux Racer) ← industrial (Warzone 2100)", G + "etr/music/freezingpoint.ogg", 30.0,
     WZ + "legacy_soundtrack/track7.opus"),
    ("orchestral (Warzone 2100) ← ambient (LinCity)", WZ + "original_soundtrack/track2.opus", 60.0,
     G + "lincity-ng/music/default/03 - Robert van Herk - Architectural Contemplations.ogg"),
]
CLIP, STYLE_AT, STYLE_LEN, HELD_AT = 10.0, 30.0, 60.0, 95.0
SHIPPED = ["jazz", "strings", "rock", "chiptune"]
# known answer: (input instrument, style instrument), General MIDI programs
INSTRUMENTS = {"piano": 0, "nylon guitar": 24, "violin": 40, "trumpet": 56, "clarinet": 71, "flute": 73}
# wind to bowed, struck to plucked, reed to brass, plucked to struck, struck to wind (not General MIDI
# neighbours), bowed (sustained) to plucked
TIMBRE_PAIRS = [("flute", "violin"), ("piano", "nylon guitar"), ("clarinet", "trumpet"), ("nylon guitar", "piano"),
                ("piano", "flute"), ("violin", "nylon guitar")]
KNOWN_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 10.0)  # the engine's style weight, swept on the known-answer pairs

COLUMNS = [("gram", "Gram gap", "{:.2f}"), ("corr", "corr gap", "{:.2f}"), ("chroma", "chroma cos", "{:.2f}"),
           ("onset", "onset corr", "{:.2f}"), ("f1", "note F1", "{:.2f}"), ("flat_excess", "flatness excess", "{:.2f}"),
           ("flutter", "flutter", "{:.2f}"), ("clicks", "clicks/min", "{:.0f}"), ("clipped", "clipped %", "{:.3f}")]


def music() -> Path:
    out = subprocess.run(["bash", str(ROOT / "scripts/fetch_music.sh"), str(ROOT / ".cache/music"), *PACKAGES],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return Path(out) if Path(out).is_absolute() else ROOT / out


def cut(y: np.ndarray, at: float, dur: float) -> np.ndarray:
    return y[int(at * qm.SR): int((at + dur) * qm.SR)].copy()


def run_engine(engine: StyleEngine, x: np.ndarray) -> tuple[np.ndarray, float]:
    """The engine over a whole clip in 2048-sample calls, lined up with the input; and its speed."""
    engine.reset()
    t0 = time.perf_counter()
    outs = [engine.process(x[i: i + 2048]) for i in range(0, x.size, 2048)]
    outs.append(engine.flush())
    dt = time.perf_counter() - t0
    return np.concatenate(outs)[engine.latency: engine.latency + x.size], x.size / qm.SR / dt


def run_engine_live(engine: StyleEngine, x: np.ndarray, *, slower: float = 1.0) -> tuple[np.ndarray, float]:
    """The engine over a whole clip as the live worker runs it on an unloaded machine: one block
    of input per call, each with the deadline the worker has (the latency mode's compute time per
    block from the moment the block's input is complete); lined up with the input. Returns the
    output and the optimiser steps per block. Takes as long as the engine needs, not real time.
    ``slower``: the deadline divided by it, what fits on a CPU that many times slower."""
    s = engine.settings
    span = engine.block_frames * s.hop_length
    allowance = MODES["normal"].compute_blocks * span / s.sample_rate / slower
    engine.reset()
    outs = []
    for i in range(0, x.size, span):
        outs.append(engine.process(x[i: i + span], deadline=time.perf_counter() + allowance))
    steps = engine.stats.evaluations / max(engine.stats.blocks, 1)
    outs.append(engine.flush())
    return np.concatenate(outs)[engine.latency: engine.latency + x.size], steps


def score(name: str, y: np.ndarray, x: np.ndarray, style: np.ndarray, sm: qm.StyleMeasures,
          ref_notes: np.ndarray, flat_ref: float) -> qm.Row:
    y = qm.fit(np.nan_to_num(y.astype(np.float32)), x.size)
    return qm.Row(
        name=name, gram=sm.gram_gap(y, x), corr=sm.corr_gap(y, x), chroma=qm.chroma_cosine(y, x),
        onset=qm.onset_correlation(y, x), f1=qm.onset_f1(qm.transcribe(y), ref_notes),
        flat_excess=qm.flatness(y) / flat_ref, flutter=qm.flutter(y), clicks=qm.clicks_per_minute(y),
        clipped=100 * qm.clipped(y))


def table(rows: list[qm.Row]) -> str:
    head = "| output | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + " --- |" * (len(COLUMNS) + 1)]
    for r in rows:
        d = asdict(r)
        cells = ["–" if math.isnan(d[k]) else fmt.format(d[k]) for k, _, fmt in COLUMNS]
        name = f"**{r.name}**" if r.name.startswith(("engine", "offline")) else r.name
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def judge(rows: list[qm.Row], method: str = "engine") -> dict[str, bool]:
    by = {r.name.split(" (")[0]: r for r in rows}
    e, ms = by[method], by["mean+spread"]
    lim = by["mean+spread, limited"]
    v = {"gram > mean+spread": e.gram > ms.gram, "corr > mean+spread": e.corr > ms.corr,
         "gram, corr > mean+spread limited": e.gram > lim.gram and e.corr > lim.corr,
         "chroma ≥ 0.85": e.chroma >= 0.85, "onset ≥ 0.9": e.onset >= 0.9, "flatness ≤ 1.5": e.flat_excess <= 1.5}
    if "offline transfer" in by:
        v["offline gram ≥ 0.74"] = by["offline transfer"].gram >= 0.74
    return v


def baselines(x: np.ndarray, style: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The trivial ways to move toward a style, which the engine must beat. The mean+spread match
    can come out far above full scale (a peak of 107, +40 dBFS, on one pair), which no file or
    device can play, so it is also shown through the engine's own peak limiter."""
    ms = qm.mean_spread_match(x, style)
    limited = PeakLimiter(qm.SR).process(ms)
    return [("level match", qm.level_match(x, style)), ("static EQ", qm.static_eq(x, style)),
            ("mean+spread", ms), ("mean+spread, limited", limited)]


def output_rows(x: np.ndarray, style: np.ndarray, preset, engine: StyleEngine, s: Settings, *,
                held: np.ndarray | None = None, offline: bool = False, iters: int = 300) -> list[qm.Row]:
    """Every output for one input and style, scored: the copy, the baselines (with ``held``, a
    held-out style excerpt, also the 50/50 mix and the excerpt itself), the engine and, with
    ``offline``, the offline transfer."""
    sm = qm.StyleMeasures(s, style, min(CLIP, x.size / qm.SR))
    ref_notes = qm.transcribe(x)
    flat_ref = max(qm.flatness(x), qm.flatness(style))
    y_engine, speed = run_engine(engine, x)
    outs = [("input copy", x), *baselines(x, style)]
    if held is not None:
        outs += [("50/50 mix", qm.half_mix(x, held)), ("held-out style (unrelated music)", held)]
    outs.append((f"engine ({speed:.1f}x real time)", y_engine))
    if offline:
        t0 = time.perf_counter()
        y_off = transfer(x, preset, n_iter=iters).audio
        outs.append((f"offline transfer ({time.perf_counter() - t0:.0f} s)", y_off))
    return [score(n, y, x, style, sm, ref_notes, flat_ref) for n, y in outs]


def file_to_file_seconds(preset_path: Path, content_path: Path, out: Path, runs: int = 3) -> list[float]:
    """Wall time of the whole `mst-live` process, start-up included, file to file."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(ROOT / ".venv/bin/mst-live"), "--preset", str(preset_path), "--input", str(content_path),
                        "--output", str(out), "--quiet"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def melody(seed: int, seconds: float, program: int) -> Score:
    """A seeded single line a player might improvise: steps and leaps in a major scale, rests, varied lengths."""
    rng = random.Random(seed)
    sc = Score()
    sc.program(0, program)
    sc.tempo(0, 96)
    scale = [0, 2, 4, 5, 7, 9, 11]
    key = rng.choice([55, 57, 60, 62])
    deg, beat = 7, 0.0
    while beat < seconds * 96 / 60:
        dur = rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0, 0.25])
        if rng.random() < 0.12:
            beat += dur
            continue
        deg = max(0, min(16, deg + rng.choice([-2, -1, -1, 1, 1, 2, 3, -3, 4])))
        pitch = key + 12 * (deg // 7) + scale[deg % 7]
        sc.note(0, beat, dur * 0.95, pitch, rng.randint(70, 105))
        beat += dur
    return sc


def timbre_clips(work: Path, s: Settings, a: str, b: str, *, programs: dict[str, int] = INSTRUMENTS,
                 soundfont: Path = SOUNDFONT, prefix: str = "timbre") -> tuple[np.ndarray, np.ndarray, np.ndarray, Path]:
    """One known-answer pair, rendered once into ``work``: the melody on ``a`` (the input), the same
    notes on ``b`` (the truth, cut to the input's length), 60 s of other notes on ``b`` (the style)
    and that style's file; ``programs`` names the General MIDI instruments, ``soundfont`` plays them."""
    wav, paths = {}, {}
    for tag, seed, prog, dur in [("in", 11, programs[a], 12.0), ("truth", 11, programs[b], 12.0),
                                 ("style", 23, programs[b], 60.0)]:
        paths[tag] = work / f"{prefix}_{a}_{b}_{tag}.wav".replace(" ", "-")
        if not paths[tag].exists():
            render(melody(seed, dur, prog).midi(), paths[tag], sample_rate=s.sample_rate, soundfont=soundfont)
        wav[tag] = read_mono(paths[tag], s.sample_rate)
    return wav["in"], qm.fit(wav["truth"], wav["in"].size), wav["style"], paths["style"]


def timbre_rows(work: Path, net: FeatureNet, s: Settings) -> tuple[list[str], dict[str, list[tuple[float, float]]]]:
    """For each instrument pair: how far each output moved from the input toward the truth
    (the same notes played by the style's instrument), on log-mel and on MFCC+Δ covariance."""
    results: dict[str, list[tuple[float, float]]] = {}
    labels = []
    for a, b in TIMBRE_PAIRS:
        x, truth, style, style_path = timbre_clips(work, s, a, b)
        preset = build_preset([style_path], settings=s)
        outs = dict(baselines(x, style))
        for w in KNOWN_WEIGHTS:
            engine = StyleEngine(preset, net=net, params=LiveParams(style_weight=w))
            outs[f"engine, style weight {w:g}"] = run_engine(engine, x)[0]
        d_lm, d_mc = qm.logmel_distance(x, truth), qm.mfcc_cov_distance(x, truth)
        for name, y in outs.items():
            moved = (1 - qm.logmel_distance(y, truth) / d_lm, 1 - qm.mfcc_cov_distance(y, truth) / d_mc)
            results.setdefault(name, []).append(moved)
        labels.append(f"{a} → {b}")
    return labels, results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-offline", action="store_true", help="skip the offline transfer rows")
    ap.add_argument("--iters", type=int, default=300, help="offline transfer iterations (its default)")
    ap.add_argument("--quick", action="store_true", help="first real-music pair only, no shipped presets (for trying levers)")
    ap.add_argument("--precision", default="auto", help="the network's arithmetic (auto); with --quick, to compare them")
    args = ap.parse_args()
    s = Settings()
    root = music()
    work = ROOT / ".cache/quality"
    work.mkdir(parents=True, exist_ok=True)
    net = FeatureNet(s, precision=choose("cpu", args.precision, network=s.network).precision)
    print(f"network: {net.precision}", flush=True)

    speed_line = ""
    if not args.quick:  # first, on a quiet machine: 60 s of the first pair's content, file to file
        label, content_file, c_at, style_file = PAIRS[0]
        sf.write(work / "content60.wav", cut(read_mono(root / content_file, s.sample_rate), c_at, 60.0), s.sample_rate)
        full = read_mono(root / style_file, s.sample_rate)
        sf.write(work / "style.wav", cut(full, STYLE_AT, STYLE_LEN), s.sample_rate)
        build_preset([work / "style.wav"], settings=s).save(work / "pair1.npz")
        times = file_to_file_seconds(work / "pair1.npz", work / "content60.wav", work / "out60.wav")
        med = float(np.median(times))
        speed_line = (f"File to file, the whole `mst-live` process (start-up, weights, warm-up included) on 60 s of "
                      f"`{Path(content_file).name}`: **{med:.1f} s** median of {len(times)} "
                      f"({', '.join(f'{t:.1f}' for t in times)}), **{med / 60:.2f}x real time**.")
        print(speed_line, flush=True)

    sections, verdicts = [], []
    pairs = PAIRS[:1] if args.quick else PAIRS
    for label, content_file, c_at, style_file in pairs:
        x = cut(read_mono(root / content_file, s.sample_rate), c_at, CLIP)
        full = read_mono(root / style_file, s.sample_rate)
        style, held = cut(full, STYLE_AT, STYLE_LEN), cut(full, HELD_AT, CLIP)
        sf.write(work / "style.wav", style, s.sample_rate)
        preset = build_preset([work / "style.wav"], settings=s)
        engine = StyleEngine(preset, net=net)
        rows = output_rows(x, style, preset, engine, s, held=held, offline=not args.no_offline, iters=args.iters)
        v = judge(rows)
        verdicts.append((label, v, rows))
        sections.append(f"**{label}** — content `{Path(content_file).name}` {c_at:.0f}–{c_at + CLIP:.0f} s, style "
                        f"`{Path(style_file).name}` {STYLE_AT:.0f}–{STYLE_AT + STYLE_LEN:.0f} s\n\n{table(rows)}\n")
        print(sections[-1], flush=True)

    if not args.quick:
        demo = read_mono(ROOT / "presets/demo.flac", s.sample_rate)
        for name in SHIPPED:
            preset = load_preset(ROOT / f"presets/{name}.npz")
            style = read_mono(ROOT / f"presets/{name}.excerpt.ogg", s.sample_rate)
            rows = output_rows(demo, style, preset, StyleEngine(preset, net=net), s)
            sections.append(f"**shipped preset `{name}` on the demo clip** (style measured against its 8 s excerpt)\n\n"
                            f"{table(rows)}\n")
            print(sections[-1], flush=True)

    labels, moved = timbre_rows(work, net, s) if not args.quick else ([], {})
    timbre = ""
    if labels:
        head = "| output | " + " | ".join(f"{lab} (log-mel / MFCC cov)" for lab in labels) + " | mean log-mel | mean MFCC cov |"
        lines = [head, "|" + " --- |" * (len(labels) + 3)]
        for name, vals in moved.items():
            cells = [f"{a:.2f} / {b:.2f}" for a, b in vals]
            mean_a, mean_b = np.mean([v[0] for v in vals]), np.mean([v[1] for v in vals])
            nm = f"**{name}**" if name == f"engine, style weight {PARAMS['style_weight'].default:g}" else name
            lines.append(f"| {nm} | " + " | ".join(cells) + f" | {mean_a:.2f} | {mean_b:.2f} |")
        timbre = "\n".join(lines)
        print(timbre, flush=True)

    keys = list(verdicts[0][1].keys())
    summary = ["| pair | " + " | ".join(keys) + " |", "|" + " --- |" * (len(keys) + 1)]
    for label, v, _ in verdicts:
        summary.append(f"| {label} | " + " | ".join("yes" if ok else "**no**" for ok in v.values()) + " |")
    body = f"""## Quality: style, content and artefacts against the trivial baselines

`scripts/bench_quality.py` on {machine()}. Engine at its defaults ({s.describe()}; {BLOCK}-frame blocks,
{PARAMS['steps'].default} steps, style weight 1, content weight 0.01, pitch weight {PARAMS['pitch_weight'].default:g}, the first stage (each bin's log-magnitude mean and spread moved to the style's), each band moved at most 12 dB by it and 12 dB more by the optimiser (`--max-change`) and raised no higher than the style's envelope, the input's own phase, output
level following the input), rendered file to
file. Music: five freely licensed game soundtracks from Debian's archive (Wesnoth, Warzone 2100,
Extreme Tux Racer, LinCity-NG, Frozen Bubble), fetched by `scripts/fetch_music.sh`, never committed.
Content and style of each pair come from different albums and genres; 60 s of the style build the
preset and a further 10 s of it are the held-out excerpt, which also serves as the unrelated music
that shows the floor of each content measure.

What the columns mean (none is the engine's own loss, but the engine's pitch term holds each frame's
STFT chroma at the input's, so read the chroma column beside note F1, which it does not guard):
- **Gram gap**: 1 − ‖G(out) − G(style)‖ / ‖G(input) − G(style)‖ on a held-out network (seed 104729, 3000
  filters, width 7). Level and long-term spectrum weigh heavily in it: see how far a level match gets.
- **corr gap**: the same share for the correlation matrix of a second held-out network's features
  (512 filters, width 5, seed 7654321; each filter centred and normalised over time), against 10 s
  windows of the style. A gain barely moves it (see the level match); a static EQ does, since it
  changes which of the network's rectified filters fire (see the static EQ).
- **chroma cos**: CQT chroma cosine to the input; **onset corr**: onset-envelope correlation with the
  input; **note F1**: note-onset F1 (pitch, ±50 ms) of basic-pitch's transcription of the output
  against its transcription of the input.
- **flatness excess**: median spectral flatness over that of the flatter (noisier) of input and style: above 1 the output is noisier than both (hiss);
  **flutter**: level jumps at the worst position of the engine's {BLOCK}-frame block cycle over the
  median position (music unaware of blocks: about 1.2–1.5); **clicks/min**: 2 ms bursts of
  high-passed energy 30x their surroundings.

**mean+spread, limited** is the mean+spread match through the engine's own peak limiter (ceiling
0.98, instant attack, 50 ms release). The raw match is a float signal that can sit far above full
scale (RMS 1.25 and 3.8, peaks 16 and 107 on the folk and blues pairs), which no file or device can
play; the engine's output never passes 0.98. The table of checks compares the engine with both.

### Speed

{speed_line}

### Real music

{chr(10).join(sections)}

### Checks: the engine at its defaults, and the offline transfer

{chr(10).join(summary)}

### Known answer: the same notes on another instrument

A seeded melody (mido) rendered with FluidSynth (FluidR3 GM) on instrument A is the input; the
same notes on instrument B are the true answer; the preset is built from 60 s of *other* notes on B.
Each cell: the share of the input's distance to the truth that the output removed (1 = the truth,
0 = no better than the input, negative = further away), on level-normalised log-mel (RMS dB) and
on the covariance of MFCC (c1–c19) and their deltas. The engine is swept over its style weight
({', '.join(f'{w:g}' for w in KNOWN_WEIGHTS)}; the default in bold).

{timbre}
"""
    if not args.quick:
        write_section("quality", body)


if __name__ == "__main__":
    main()
