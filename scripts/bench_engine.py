"""The streaming engine at the defaults on real music: real-time load of the whole process,
latency, steps per block and yardstick quality, side by side with the offline transfer.

Run: .venv/bin/python scripts/bench_engine.py   (writes the 'engine' section of BENCHMARKS.md)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_foundation import CONTENT_TRACK, STYLE_TRACK, style_and_content
from benchmd import ROOT, machine, write_section
from yardstick import Yardstick

from mst_live import Settings, load_preset, transfer
from mst_live.engine import StyleEngine
from mst_live.io.files import read_mono
from mst_live.latency import MODES
from mst_live.params import LiveParams


def run_engine_process(preset: Path, src: Path, dst: Path, device: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([str(ROOT / ".venv/bin/mst-live"), "--preset", str(preset), "--input", str(src),
                          "--output", str(dst), "--quiet", "--compute-device", device], capture_output=True, text=True,
                         check=True)
    said = "; ".join(ln for ln in out.stdout.strip().splitlines() if ln.strip())
    return time.perf_counter() - t0, said.replace(str(ROOT) + "/", "")


def main() -> None:
    s = Settings()
    work, style, content60, preset_path = style_and_content(s)
    content10 = content60[: 10 * s.sample_rate]
    sf.write(work / "content10.wav", content10, s.sample_rate)
    preset = load_preset(preset_path)
    ys = Yardstick(s)
    g_style = ys.gram(style)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    rows = []
    for device in devices:
        wall, summary = run_engine_process(preset_path, work / "content60.wav", work / f"engine60_{device}.wav", device)
        y = read_mono(work / f"engine60_{device}.wav", s.sample_rate)
        rows.append((f"engine, 60 s, whole `mst-live` process ({device})", wall / 60.0,
                     ys.style_gap_closed(y, content60, g_style), ys.content_distance(y, content60), summary))
        wall10, summary10 = run_engine_process(preset_path, work / "content10.wav", work / f"engine10_{device}.wav", device)
        y10 = read_mono(work / f"engine10_{device}.wav", s.sample_rate)
        rows.append((f"engine, 10 s, whole process ({device})", wall10 / 10.0,
                     ys.style_gap_closed(y10, content10, g_style), ys.content_distance(y10, content10), summary10))
    t0 = time.perf_counter()
    off = transfer(content10, preset, n_iter=300)
    t_off = time.perf_counter() - t0
    rows.append(("offline transfer, 10 s, 300 L-BFGS iterations (library call)", t_off / 10.0,
                 ys.style_gap_closed(off.audio, content10, g_style), ys.content_distance(off.audio, content10), ""))

    eng = StyleEngine(preset, device="cpu", params=LiveParams())
    hop, n_fft, sr = s.hop_length, s.n_fft, s.sample_rate
    block, la = eng.block_frames, eng._phase.look_ahead
    ms = lambda n: 1000.0 * n / sr  # noqa: E731
    lines = [
        "## Streaming engine",
        "",
        f"`scripts/bench_engine.py` on {machine()}. Content: `{CONTENT_TRACK}` from 20 s; style: 60 s of "
        f"`{STYLE_TRACK}` (the preset built from it). Defaults: {s.describe()}, {block}-frame blocks, "
        f"{eng.overlap_frames} overlap frame(s), {eng.params.snapshot().steps} optimiser steps per block, the network in "
        f"{eng.compute.describe()}, {eng.optimiser.memory_frames} frames of style memory, the first stage (each bin's mean and spread "
        f"moved to the style's), the input's own phase under the new magnitudes ({la}-frame look-ahead kept "
        f"for `--phase rebuild`). Load = wall time / audio time "
        "(below 1 is faster than real time); the engine rows time the whole process, with start-up "
        "(imports, weights, numba cache) included.",
        "",
        "| run | load | style gap closed | content distance |",
        "| --- | --- | --- | --- |",
    ]
    for name, load, gap, dist, _ in rows:
        lines.append(f"| {name} | **{load:.2f}** | **{gap:.2f}** | {dist:.2f} |")
    lines += ["", "What the engine itself reported:", ""]
    lines += [f"- {name}: `{summary}`" for name, _, _, _, summary in rows if summary]
    lines += [
        "",
        f"Latency at the defaults: **{ms(eng.latency):.0f} ms** ({eng.latency} samples) = a block of {block} frames "
        f"waiting to fill ({block - 1} hops, {ms((block - 1) * hop):.0f} ms) + {eng.overlap_frames} overlap frames "
        f"optimised again with the next block ({ms(eng.overlap_frames * hop):.0f} ms) + the phase reconstructor's look-ahead "
        f"({la} hops, {ms(la * hop):.0f} ms) + one STFT frame ({n_fft - 1} samples, {ms(n_fft - 1):.0f} ms). "
        f"Live, the worker gets {MODES['normal'].compute_blocks:g} of a block ({ms(MODES['normal'].compute_blocks * block * hop):.0f} ms) "
        "to compute it, plus the resamplers' hold-back, a polling chunk, a margin and the device's own buffers "
        "(section \"Live through JACK\").",
    ]
    if len(devices) == 1:
        lines += ["", "No CUDA device in this run: the CUDA rows appear when the script runs on a machine with one."]
    body = "\n".join(lines)
    write_section("engine", body)
    print(body)


if __name__ == "__main__":
    main()
