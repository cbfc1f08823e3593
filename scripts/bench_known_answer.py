"""The known answer, wider: the same notes on two instruments, over two General MIDI soundfonts.

Each pair renders one seeded melody on instrument A (the input) and on instrument B (the truth),
and 60 s of other notes on B (the style the preset is built from). The engine renders the input
file to file at each style weight; each cell is the share of the input's level-normalised log-mel
distance to the truth that the output removed (`bench_ceilings.moved`), beside chroma and onset
correlation with the input and the flatness over the flatter of input and truth. FluidR3 is the
quality benchmark's soundfont; TimGM6mb (Debian timgm6mb-soundfont, unpacked into .cache/music,
never installed) is another maker's samples of the same instruments.

Run: .venv/bin/python scripts/bench_known_answer.py   (writes the 'known_answer' section of BENCHMARKS.md)
Needs `make bench-deps` and Debian's fluidsynth + fluid-soundfont-gm, as the quality benchmark.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_measures as qm
from bench_ceilings import moved
from bench_quality import run_engine, timbre_clips
from benchmd import ROOT, machine, write_section
from compose import SOUNDFONT

from mst_live import FeatureNet, Settings, StyleEngine, build_preset
from mst_live.compute import choose
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
BAR = {"mean at 10": 0.40, "least at 10": 0.25, "mean at 4": 0.30, "chroma": 0.8, "flatness": 1.5}


def soundfonts() -> dict[str, Path]:
    music = Path(subprocess.run(["bash", str(ROOT / "scripts/fetch_music.sh"), str(ROOT / ".cache/music"),
                                 "timgm6mb-soundfont"], check=True, capture_output=True, text=True).stdout.strip())
    return {"FluidR3": SOUNDFONT, "TimGM6mb": music / "usr/share/sounds/sf2/TimGM6mb.sf2"}


def main() -> None:
    s = Settings()
    work = ROOT / ".cache/known_answer"
    work.mkdir(parents=True, exist_ok=True)
    chosen = choose("auto", "auto", network=s.network)
    net = FeatureNet(s, device=chosen.device, precision=chosen.precision)
    rows, cells = [], {w: [] for w in WEIGHTS}
    for font, path in soundfonts().items():
        for a, b, kind in PAIRS:
            x, truth, _, style_path = timbre_clips(work, s, a, b, programs=PROGRAMS, soundfont=path, prefix=font)
            preset = build_preset([style_path], settings=s)
            flat_ref = max(qm.flatness(x), qm.flatness(truth))
            row = [font, f"{a} → {b}", kind]
            for w in WEIGHTS:
                y = run_engine(StyleEngine(preset, net=net, params=LiveParams(style_weight=w)), x)[0]
                y = qm.fit(np.nan_to_num(y.astype(np.float32)), x.size)
                m, c, o, f = (moved(y, x, truth), qm.chroma_cosine(y, x), qm.onset_correlation(y, x),
                              qm.flatness(y) / flat_ref)
                cells[w].append((m, c, o, f))
                row.append(f"{m:.2f} ({c:.2f} / {o:.2f} / {f:.2f})")
            rows.append("| " + " | ".join(row) + " |")
            print(rows[-1], flush=True)
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
"""
    write_section("known_answer", body)
    print(body)


if __name__ == "__main__":
    main()
