"""Does the morph knob, at the strong end of the style knob, morph the instrument?

One piano melody has two known answers: the same notes on a nylon guitar and on a flute (the
quality benchmark's known-answer clips, each preset built from other notes on its instrument).
The engine plays the piano into the guitar preset, morphed toward the flute preset, and each
output is measured against both answers: the share of the input's log-mel distance to each that
it removed. A morph that morphs the instrument moves from the guitar's answer to the flute's as
the knob turns, with the notes kept (chroma to the input) and no hiss (flatness against the
flatter of the input and the two answers).

Run: .venv/bin/python scripts/bench_morph.py   (writes the 'morph' section of BENCHMARKS.md)
Needs `make bench-deps` and fluidsynth + fluid-soundfont-gm, as the quality benchmark.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_measures as qm
from bench_ceilings import moved
from bench_quality import run_engine, timbre_clips
from benchmd import ROOT, machine, write_section

from mst_live import FeatureNet, Settings, StyleEngine, build_preset
from mst_live.compute import choose
from mst_live.params import LiveParams

PLAYED, FROM, TO = "piano", "nylon guitar", "flute"
MORPHS = (0.0, 0.25, 0.5, 0.75, 1.0)
WEIGHTS = (4.0, 10.0)


def main() -> None:
    s = Settings()
    work = ROOT / ".cache/quality"
    work.mkdir(parents=True, exist_ok=True)
    net = FeatureNet(s, precision=choose("cpu", "auto", network=s.network).precision)
    x, to_from, _, from_path = timbre_clips(work, s, PLAYED, FROM)
    x_again, to_to, _, to_path = timbre_clips(work, s, PLAYED, TO)
    if not np.array_equal(x, x_again):
        raise SystemExit("the two known-answer pairs do not share their piano input")
    start, end = build_preset([from_path], settings=s), build_preset([to_path], settings=s)
    flat_ref = max(qm.flatness(x), qm.flatness(to_from), qm.flatness(to_to))
    lines = [f"| style weight | morph | toward {FROM} | toward {TO} | chroma to the input | flatness excess |",
             "| --- | --- | --- | --- | --- | --- |"]
    for w in WEIGHTS:
        for m in MORPHS:
            engine = StyleEngine(start, net=net, morph=end, params=LiveParams(style_weight=w, morph=m))
            y = qm.fit(np.nan_to_num(run_engine(engine, x)[0].astype(np.float32)), x.size)
            row = (moved(y, x, to_from), moved(y, x, to_to), qm.chroma_cosine(y, x), qm.flatness(y) / flat_ref)
            print(w, m, [round(v, 3) for v in row], flush=True)
            lines.append(f"| {w:g} | {m:g} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    table = "\n".join(lines)
    print(table, flush=True)
    body = f"""## Morph at the strong end: from one instrument to another

`scripts/bench_morph.py` on {machine()}. The quality section's piano melody played into the
{FROM} preset, morphed toward the {TO} preset (each preset from other notes on its instrument),
at style weights {", ".join(f"{w:g}" for w in WEIGHTS)}. Each output is measured against both known answers, the
same notes on the {FROM} and on the {TO}: the share of the input's log-mel distance to each
that it removed (1 = that answer, 0 = no closer than the input). **flatness excess**: over the
flatter of the input and the two answers.

{table}
"""
    write_section("morph", body)


if __name__ == "__main__":
    main()
