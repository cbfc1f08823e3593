"""Live configurations side by side in one run: the live benchmark's music, JACK server and CPU
hog, with each configuration's extra `mst-live` arguments, interleaved run by run.

Why: live step counts move with the machine's load from one run to the next (the low mode's
unchanged code gave 1.4 and 4.2 steps per block in two bench_live runs an hour apart), so a
live change is judged only against its alternative in the same run.

Run: .venv/bin/python scripts/compare_live.py "" "--block-frames 8" [--period 1024] [--runs 2]
Prints one line per run; writes nothing to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_foundation import style_and_content
from bench_live import HOG, RATE
from jackrig import JackServer, measure_lag, play_through, read_events
from yardstick import Yardstick

from mst_live import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", help="extra mst-live arguments per configuration (\"\" for the defaults)")
    ap.add_argument("--period", type=int, default=256, help="JACK period in frames (256)")
    ap.add_argument("--runs", type=int, default=2, help="runs of each configuration (2)")
    args = ap.parse_args()
    s = Settings()
    work, style, content, preset = style_and_content(s)
    clip = soxr.resample(content, s.sample_rate, RATE).astype(np.float32)
    ys = Yardstick(s)
    g_style = ys.gram(style)
    for run in range(args.runs):
        for i, config in enumerate(args.configs):
            events, log = work / f"compare_{i}_{run}.jsonl", work / f"compare_{i}_{run}.log"
            with JackServer(f"mstcompare{os.getpid()}", rate=RATE, period=args.period, realtime=True) as server:
                player = play_through(server.name, preset, clip, events, log, *shlex.split(config), hog=HOG)
            ev = read_events(events)
            start, last = next(e for e in ev if e["type"] == "start"), [e for e in ev if e["type"] == "status"][-1]
            lag = measure_lag(clip[10 * RATE : 12 * RATE], player.rec[10 * RATE :], max_lag=2 * RATE)
            got = soxr.resample(player.rec[lag : lag + clip.size], RATE, s.sample_rate)
            gap = ys.style_gap_closed(got, content[: got.size], g_style)
            print(f"[{config or 'defaults'}] run {run + 1}: latency reported {start['latency_ms']:.1f} ms, "
                  f"steps/block {last['steps_per_block']:.2f}, no steps {last['dry_blocks']} of {last['blocks']}, "
                  f"load {last['load']:.2f}, underruns {last['underruns']}, JACK server xruns {player.xruns}, "
                  f"style gap closed {gap:.3f}", flush=True)


if __name__ == "__main__":
    main()
