"""60 s of real music live through JACK at the defaults: underruns, steps per block, load, latency.

Run: .venv/bin/python scripts/bench_live.py   (writes the 'live' section of BENCHMARKS.md)
Starts its own JACK server (dummy backend, 48 kHz, 256-frame periods); needs Debian jackd2.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_foundation import CONTENT_TRACK, style_and_content
from benchmd import machine, write_section

from mst_live import Settings
from mst_live.io.live import PRIME_MARGIN_S
from mst_live.jackrig import JackServer, Player, read_events, start_mst_live
from mst_live.quality import Yardstick

RATE = 48000
PERIODS = (256, 1024)


def main() -> None:
    s = Settings()
    work, style, content, preset = style_and_content(s)
    clip = soxr.resample(content, s.sample_rate, RATE).astype(np.float32)
    ys = Yardstick(s)
    g_style = ys.gram(style)
    rows = []
    for period in PERIODS:
        events = work / f"live_events_{period}.jsonl"
        events.unlink(missing_ok=True)
        with JackServer(f"mstbench{os.getpid()}", rate=RATE, period=period, realtime=True) as server:
            log = work / f"live_{period}.log"
            proc = start_mst_live(server.name, preset, events, log=log)
            player = Player(server.name, clip)
            try:
                player.connect()
                while player.pos < clip.size + 2 * RATE:
                    time.sleep(0.1)
                    if proc.poll() is not None:
                        raise SystemExit(log.read_text())
            finally:
                player.close()
                proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=60)
        ev = read_events(events)
        start = next(e for e in ev if e["type"] == "start")
        last = [e for e in ev if e["type"] == "status"][-1]
        lag = int(start["latency_ms"] / 1000 * RATE)
        got = soxr.resample(player.rec[lag : lag + clip.size], RATE, s.sample_rate)
        gap = ys.style_gap_closed(got, content[: got.size], g_style)
        rows.append((period, start, last, gap))
    lines = [
        "## Live through JACK",
        "",
        f"`scripts/bench_live.py` on {machine()}: a realtime JACK server (`jackd -R`, dummy backend, 48 kHz), "
        f"`mst-live --preset style60.npz --input mic` at the defaults, and a JACK client playing 60 s of `{CONTENT_TRACK}` "
        "into mst-live's input port while recording its output port. Underruns and overruns count the worker being "
        "late (the output ring ran dry) or behind (the input ring filled up); device xruns count PortAudio reporting "
        "the callback itself as late, which is host scheduling (the callback needs Python's GIL and the CPU "
        "while torch keeps both cores busy). One xrun at about 1 s is the test client rewiring the JACK graph.",
        "",
        "| JACK period | underruns / overruns | device xruns | steps per block (12 asked) | engine load | latency in to out | style gap closed (yardstick) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for period, start, last, gap in rows:
        lines.append(
            f"| {period} frames ({1000 * period / RATE:.1f} ms) | **{last['underruns']} / {last['overruns']}** | {last['xruns']} | "
            f"**{last['steps_per_block']:.1f}** ({last['dry_blocks']} blocks dry) | {last['load']:.2f} | "
            f"{start['latency_ms']:.0f} ms | {gap:.2f} |")
    start = rows[0][1]
    block_ms = 1000 * 16 * s.hop_length / s.sample_rate
    lines += ["", f"Latency in to out = the engine's {start['engine_latency_ms']:.0f} ms + one block ({block_ms:.0f} ms) for "
              f"the worker to compute it + a {1000 * PRIME_MARGIN_S:.0f} ms margin + the device's own buffering."]
    body = "\n".join(lines)
    write_section("live", body)
    print(body)


if __name__ == "__main__":
    main()
