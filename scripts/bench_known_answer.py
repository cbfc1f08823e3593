"""The known answer, wider: the same notes on two instruments, over two General MIDI soundfonts.

Each pair renders one seeded melody on instrument A (the input) and on instrument B (the truth),
and 60 s of other notes on B (the style the preset is built from). The engine renders the input
file to file at each style weight; each cell is the share of the input's level-normalised log-mel
distance to the truth that the output removed (`bench_ceilings.moved`), beside chroma and onset
correlation with the input and the flatness over the flatter of input and truth. FluidR3 is the
quality benchmark's soundfont; TimGM6mb (Debian timgm6mb-soundfont, unpacked into .cache/music,
never installed) is another maker's samples of the same instruments.

Then each pair again at weights 1, 4 and 10 as the live engine renders it (`run_engine_live`: the
live worker's deadline per block, one thread, every CPU path capped at AVX2), in a child process,
beside the file render.

Run: .venv/bin/python scripts/bench_known_answer.py   (writes the 'known_answer' section of BENCHMARKS.md)
Needs `make bench-deps` and Debian's fluidsynth + fluid-soundfont-gm, as the quality benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_measures as qm
from bench_ceilings import moved
from bench_quality import run_engine, run_engine_live, timbre_clips
from benchmd import AVX2_ONLY, ROOT, machine, write_section
from compose import SOUNDFONT

from mst_live import FeatureNet, Settings, StyleEngine, build_preset, load_preset
from mst_live.compute import choose, cpu_capability
from mst_live.latency import MODES
from mst_live.params import LiveParams

PROGRAMS = {"piano": 0, "marimba": 12, "organ": 19, "nylon guitar": 24, "violin": 40, "strings": 48,
            "harp": 46, "trumpet": 56, "alto sax": 65, "clarinet": 71, "flute": 73}
# (input, style, kind): sustained into plucked or struck, into reeds or brass, and reverses
PAIRS = [
    ("organ", "nylon guitar", "sustained → plucked"), ("violin", "piano", "sustained → struck"),
    ("flute", "harp", "sustained → plucked"), ("strings", "marimba", "sustained → struck"),
    ("piano", "alto sax", "into reed"), ("violin", "trumpet", "into brass"),
    ("nylon guitar", "clarinet", "into reed"), ("nylon guitar", "organ", "plucked → sustained"),
    ("piano", "violin", "struck → sustained"), ("harp", "flute", "plucked → sustained"),
    ("clarinet", "trumpet", "reed → brass"), ("trumpet", "clarinet", "brass → reed"),
]
WEIGHTS = (1.0, 2.0, 4.0, 10.0)
LIVE_WEIGHTS = (1.0, 4.0, 10.0)
SLOWER = (1.0, 2.0)  # live as on this CPU, and with half the time: a laptop twice as slow
WORK = ROOT / ".cache/known_answer"
BAR = {"mean at 10": 0.40, "least at 10": 0.25, "mean at 4": 0.30, "chroma": 0.8, "flatness": 1.5}


def soundfonts() -> dict[str, Path]:
    music = Path(subprocess.run(["bash", str(ROOT / "scripts/fetch_music.sh"), str(ROOT / ".cache/music"),
                                 "timgm6mb-soundfont"], check=True, capture_output=True, text=True).stdout.strip())
    return {"FluidR3": SOUNDFONT, "TimGM6mb": music / "usr/share/sounds/sf2/TimGM6mb.sf2"}


def measures(y: np.ndarray, x: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, float]:
    """Share moved toward the truth, chroma and onset correlation with the input, flatness over the
    flatter of input and truth."""
    y = qm.fit(np.nan_to_num(y.astype(np.float32)), x.size)
    return (moved(y, x, truth), qm.chroma_cosine(y, x), qm.onset_correlation(y, x),
            qm.flatness(y) / max(qm.flatness(x), qm.flatness(truth)))


def pairs() -> list[tuple[str, Path, str, str, str]]:
    """(soundfont, its file, input instrument, style instrument, kind) for every pair."""
    return [(font, path, a, b, kind) for font, path in soundfonts().items() for a, b, kind in PAIRS]


def preset_path(font: str, a: str, b: str) -> Path:
    return WORK / f"{font}_{a}_{b}.npz".replace(" ", "-")


def live_child() -> None:
    """Every pair at `LIVE_WEIGHTS` as the live engine renders it, on one thread; JSON on stdout."""
    torch.set_num_threads(1)
    s = Settings()
    net = FeatureNet(s)
    out = {"capability": cpu_capability(), "rows": []}
    for font, path, a, b, _ in pairs():
        x, truth, _, _ = timbre_clips(WORK, s, a, b, programs=PROGRAMS, soundfont=path, prefix=font)
        preset = load_preset(preset_path(font, a, b))
        row = []  # per slowness, per weight: the measures and the steps per block
        for k in SLOWER:
            row.append([])
            for w in LIVE_WEIGHTS:
                y, steps = run_engine_live(StyleEngine(preset, net=net, params=LiveParams(style_weight=w)), x, slower=k)
                row[-1].append([*measures(y, x, truth), steps])
        out["rows"].append(row)
        print(f"live {font} {a} → {b}: {row}", file=sys.stderr, flush=True)
    print(json.dumps(out))


def live_tables(v: dict[float, np.ndarray], lv: np.ndarray, every: list) -> tuple[list[str], list[str]]:
    """Per pair and over all pairs: the file render's measures (``v``) beside the live render's (``lv``)."""
    live_rows = []
    for i, (font, _, a, b, _) in enumerate(every):
        cells = [f"{v[w][i, 0]:.2f} / " + " / ".join(f"{lv[i, k, j, 0]:.2f}" for k in range(len(SLOWER)))
                 + " (" + ", ".join(f"{lv[i, k, j, 4]:.1f}" for k in range(len(SLOWER))) + ")"
                 for j, w in enumerate(LIVE_WEIGHTS)]
        live_rows.append("| " + " | ".join([font, f"{a} → {b}", *cells]) + " |")
    summary = ["| mean moved, file | " + " | ".join(f"{v[w][:, 0].mean():.2f}" for w in LIVE_WEIGHTS) + " |"]
    for k, slower in enumerate(SLOWER):
        name = "live" if slower == 1 else f"live, {slower:g}x slower"
        m = lv[:, k]
        summary += [
            f"| mean moved, {name} (less file) | " + " | ".join(
                f"{m[:, j, 0].mean():.2f} ({m[:, j, 0].mean() - v[w][:, 0].mean():+.3f})" for j, w in enumerate(LIVE_WEIGHTS)) + " |",
            f"| least moved, {name} | " + " | ".join(f"{m[:, j, 0].min():.2f}" for j in range(len(LIVE_WEIGHTS))) + " |",
            f"| most flatness, {name} | " + " | ".join(f"{m[:, j, 3].max():.2f}" for j in range(len(LIVE_WEIGHTS))) + " |",
            f"| least chroma, {name} | " + " | ".join(f"{m[:, j, 1].min():.2f}" for j in range(len(LIVE_WEIGHTS))) + " |",
            f"| steps per block, {name}: median (fewest) | " + " | ".join(
                f"{np.median(m[:, j, 4]):.1f} ({m[:, j, 4].min():.1f})" for j in range(len(LIVE_WEIGHTS))) + " |",
        ]
    return live_rows, summary


def main() -> None:
    if "--live" in sys.argv:
        return live_child()
    s = Settings()
    WORK.mkdir(parents=True, exist_ok=True)
    chosen = choose("auto", "auto", network=s.network)
    net = FeatureNet(s, device=chosen.device, precision=chosen.precision)
    rows, cells, every = [], {w: [] for w in WEIGHTS}, pairs()
    for font, path, a, b, kind in every:
        x, truth, _, style_path = timbre_clips(WORK, s, a, b, programs=PROGRAMS, soundfont=path, prefix=font)
        preset = build_preset([style_path], settings=s)
        preset.save(preset_path(font, a, b))
        row = [font, f"{a} → {b}", kind]
        for w in WEIGHTS:
            m, c, o, f = measures(run_engine(StyleEngine(preset, net=net, params=LiveParams(style_weight=w)), x)[0], x, truth)
            cells[w].append((m, c, o, f))
            row.append(f"{m:.2f} ({c:.2f} / {o:.2f} / {f:.2f})")
        rows.append("| " + " | ".join(row) + " |")
        print(rows[-1], flush=True)
    live = json.loads(subprocess.run([sys.executable, __file__, "--live"], env={**os.environ, **AVX2_ONLY},
                                     check=True, stdout=subprocess.PIPE, text=True).stdout)
    lv = np.array(live["rows"])  # (pairs, slowness, live weights, moved / chroma / onset / flatness / steps)
    v = {w: np.array(c) for w, c in cells.items()}
    monotone = sum(1 for i in range(len(rows)) if v[10.0][i, 0] >= v[4.0][i, 0] - 0.02 and v[4.0][i, 0] >= v[1.0][i, 0])
    sustained = [i for i, (_, _, k) in enumerate(PAIRS * 2) if k.startswith("sustained")]
    summary = [
        "| mean moved | " + " | ".join(f"{v[w][:, 0].mean():.2f}" for w in WEIGHTS) + " |",
        "| least moved | " + " | ".join(f"{v[w][:, 0].min():.2f}" for w in WEIGHTS) + " |",
        "| least moved, sustained → plucked or struck | " + " | ".join(f"{v[w][sustained, 0].min():.2f}" for w in WEIGHTS) + " |",
        "| least chroma | " + " | ".join(f"{v[w][:, 1].min():.2f}" for w in WEIGHTS) + " |",
        "| least onset correlation | " + " | ".join(f"{v[w][:, 2].min():.2f}" for w in WEIGHTS) + " |",
        "| most flatness | " + " | ".join(f"{v[w][:, 3].max():.2f}" for w in WEIGHTS) + " |",
        f"| pairs with flatness over {BAR['flatness']} | " + " | ".join(f"{int((v[w][:, 3] > BAR['flatness']).sum())}" for w in WEIGHTS) + " |",
    ]
    live_rows, live_summary = live_tables(v, lv, every)
    body = f"""## Known answer over two soundfonts

`scripts/bench_known_answer.py` on {machine()}; the engine at its defaults but the style weight
({s.describe()}; {chosen.describe()}), rendered file to file. Each pair: one seeded 12 s melody
on the first instrument (the input) and on the second (the truth), the preset built from 60 s of
other notes on the second. Each cell: the share of the input's log-mel distance to the truth the
output removed (in brackets: chroma and onset correlation with the input, flatness over the
flatter of input and truth). FluidR3 is the quality benchmark's soundfont; TimGM6mb another
maker's samples of the same General MIDI instruments.

| soundfont | pair | kind | {" | ".join(f"style weight {w:g}" for w in WEIGHTS)} |
| --- | --- | --- | {" | ".join("---" for _ in WEIGHTS)} |
{chr(10).join(rows)}

| over all {len(rows)} pairs | {" | ".join(f"weight {w:g}" for w in WEIGHTS)} |
| --- | {" | ".join("---" for _ in WEIGHTS)} |
{chr(10).join(summary)}

A knob that moves one way (weight 10 at least weight 4 less 0.02, weight 4 at least weight 1):
{monotone} of {len(rows)} pairs. The bar: mean ≥ {BAR['mean at 10']} and no pair under
{BAR['least at 10']} at weight 10, mean ≥ {BAR['mean at 4']} at weight 4, chroma ≥ {BAR['chroma']}
and flatness ≤ {BAR['flatness']} on every pair at every weight.

### As the live engine renders it

The same pairs at weights {", ".join(f"{w:g}" for w in LIVE_WEIGHTS)} rendered as the live worker runs the
engine on an unloaded machine (`bench_quality.run_engine_live`: each block has the worker's
deadline, {MODES["normal"].compute_blocks:g} of a block's time from when its input is complete; the
planner decides the steps), on one torch thread, CPU capability {live["capability"]} (all four
variables capped at AVX2), beside the file render above (8 steps every block); and again with
half that time, as on a CPU twice as slow. Each cell: share moved, file / live / live twice as
slow (the live optimiser steps per block; above style weight 1 the style's own sound takes part of
each frame and at 10 all of it, without the optimiser).

| soundfont | pair | {" | ".join(f"style weight {w:g}" for w in LIVE_WEIGHTS)} |
| --- | --- | {" | ".join("---" for _ in LIVE_WEIGHTS)} |
{chr(10).join(live_rows)}

| over all {len(rows)} pairs | {" | ".join(f"weight {w:g}" for w in LIVE_WEIGHTS)} |
| --- | {" | ".join("---" for _ in LIVE_WEIGHTS)} |
{chr(10).join(live_summary)}
"""
    write_section("known_answer", body)
    print(body)


if __name__ == "__main__":
    main()
