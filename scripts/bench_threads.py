"""How long an optimiser step and a whole block take with the network on one CPU thread or two,
on a quiet machine and with a busy process on every core: the tail, not the median, decides
whether a live block is late.

Per CPU dispatch (native, and AVX2-only: no native bfloat16, like most laptops), per thread
count, per load, in a child process of its own, one after another: the engine at its defaults
(8 steps a block, no deadline, so that every block does the same work) on 12 s of real music,
with every evaluation and every block timed.

Run: .venv/bin/python scripts/bench_threads.py   (writes the 'threads' section of BENCHMARKS.md)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_foundation import CONTENT_TRACK, STYLE_TRACK, style_and_content
from benchmd import DISPATCHES, machine, write_section

THREADS = (1, 2)
SECONDS = 12.0


def child(threads: int, hog: bool) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from jackrig import cpu_hog

    from mst_live import Settings, load_preset
    from mst_live.compute import cpu_capability
    from mst_live.engine import StyleEngine
    from mst_live.params import LiveParams

    s = Settings()
    _work, _style, content, preset_path = style_and_content(s)
    eng = StyleEngine(load_preset(preset_path), params=LiveParams())
    eng.warm_up()
    evals: list[float] = []
    record = eng.planner.record_eval
    eng.planner.record_eval = lambda seconds: (evals.append(seconds), record(seconds))
    x = content[: int(SECONDS * s.sample_rate)]
    chunk = eng.block_frames * s.hop_length  # at most one block a call
    hogs = [cpu_hog(120.0) for _ in range(os.cpu_count() or 2)] if hog else []
    time.sleep(0.5 if hog else 0.0)
    calls = []
    try:
        t_all = time.perf_counter()
        for i in range(0, x.size, chunk):
            t0 = time.perf_counter()
            eng.process(x[i : i + chunk])
            calls.append(time.perf_counter() - t0)
        wall = time.perf_counter() - t_all
    finally:
        for h in hogs:
            h.kill()
    ev = np.array(evals) * 1000
    blocks = np.array(calls) * 1000
    print(json.dumps({"capability": cpu_capability(), "precision": eng.compute.precision, "threads": threads,
                      "hog": hog, "eval_median": float(np.median(ev)), "eval_p99": float(np.percentile(ev, 99)),
                      "eval_max": float(ev.max()), "block_median": float(np.median(blocks)),
                      "block_p99": float(np.percentile(blocks, 99)), "block_max": float(blocks.max()),
                      "block_s": 1000 * chunk / s.sample_rate, "realtime": SECONDS / wall}))


def main() -> None:
    rows = []
    for name, env in DISPATCHES.items():
        for threads in THREADS:
            for hog in (False, True):
                proc = subprocess.run([sys.executable, __file__, "--child", str(threads), str(int(hog))],
                                      capture_output=True, text=True, env={**os.environ, **env})
                if proc.returncode:
                    sys.exit(f"{name}, {threads} threads: {proc.stderr}")
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    lines = [
        "## Network threads: the tail of a step and of a block, quiet and under load",
        "",
        f"`scripts/bench_threads.py` on {machine()}. The engine at its defaults (8 steps a block, no "
        f"deadline, so that every block does the same work) on {SECONDS:g} s of `{CONTENT_TRACK}`, style: "
        f"the preset of 60 s of `{STYLE_TRACK}`, full-size network; every evaluation and every block timed. "
        "Each row runs in a child process of its own, one after another; under load a busy process runs on "
        "every core (the live benchmark's hog). A block has "
        f"{rows[0]['block_s']:.0f} ms of audio; live, the worker has that long per block on average, and a "
        "block that takes much longer at once empties the output ring.",
        "",
        "| CPU capability, precision | threads | load | evaluation: median / 99th percentile / worst | "
        "block: median / 99th percentile / worst | speed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['capability']}, {r['precision']} | {r['threads']} | {'hog' if r['hog'] else 'quiet'} | "
                     f"{r['eval_median']:.1f} / {r['eval_p99']:.1f} / **{r['eval_max']:.1f} ms** | "
                     f"{r['block_median']:.0f} / {r['block_p99']:.0f} / **{r['block_max']:.0f} ms** | "
                     f"{r['realtime']:.2f}x real time |")
    body = "\n".join(lines)
    write_section("threads", body)
    print(body)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]), bool(int(sys.argv[3])))
    else:
        main()
