"""Preset build speed and size on ten minutes of real music, and the offline transfer's quality.

Run: .venv/bin/python scripts/bench_foundation.py   (writes the 'foundation' section of BENCHMARKS.md)
Music: Debian's Wesnoth soundtrack, fetched by scripts/fetch_music.sh into .cache/music.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmd import ROOT, machine, write_section
from yardstick import Yardstick

from mst_live import Settings, build_preset, transfer
from mst_live.features import FeatureNet
from mst_live.io.files import read_mono

BUILD_TRACKS = ["knalgan_theme.ogg", "elf-land.ogg", "sad.ogg"]  # 628 s together
STYLE_TRACK, STYLE_AT = "traveling_minstrels.ogg", 30.0  # 60 s of style
CONTENT_TRACK, CONTENT_AT = "frantic.ogg", 20.0  # 10 s of content


def music_dir() -> Path:
    out = subprocess.run(["bash", str(ROOT / "scripts/fetch_music.sh"), str(ROOT / ".cache/music")],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    found = sorted(Path(out).glob("*/data/core/music"))
    if not found:
        sys.exit(f"no Wesnoth music under {out}")
    return found[0]


def excerpt(src: Path, at: float, dur: float, dst: Path, sr: int) -> np.ndarray:
    y = read_mono(src, sr)[int(at * sr): int((at + dur) * sr)]
    sf.write(dst, y, sr)
    return y


def style_and_content(s: Settings) -> tuple[Path, np.ndarray, np.ndarray, Path]:
    """The engine benchmarks' material: (work folder, 60 s of style, 60 s of content, preset of the style)."""
    music = music_dir()
    work = ROOT / ".cache/bench"
    work.mkdir(parents=True, exist_ok=True)
    style = excerpt(music / STYLE_TRACK, 30.0, 60.0, work / "style60.wav", s.sample_rate)
    content = excerpt(music / CONTENT_TRACK, 20.0, 60.0, work / "content60.wav", s.sample_rate)
    preset = build_preset([work / "style60.wav"], settings=s).save(work / "style60.npz")
    return work, style, content, preset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3, help="preset build runs (median)")
    args = ap.parse_args()
    music = music_dir()
    work = ROOT / ".cache/bench"
    work.mkdir(parents=True, exist_ok=True)
    s = Settings()

    t0 = time.perf_counter()
    FeatureNet(s)
    weights_s = time.perf_counter() - t0

    tracks = [music / t for t in BUILD_TRACKS]
    audio_s = sum(sf.info(str(t)).duration for t in tracks)
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        preset = build_preset(tracks, settings=s)
        times.append(time.perf_counter() - t0)
    build_s = statistics.median(times)
    path = preset.save(work / "tenmin.npz")
    size = path.stat().st_size

    style = excerpt(music / STYLE_TRACK, STYLE_AT, 60.0, work / "style60.wav", s.sample_rate)
    content = excerpt(music / CONTENT_TRACK, CONTENT_AT, 10.0, work / "content10.wav", s.sample_rate)
    style_preset = build_preset([work / "style60.wav"], settings=s)
    t0 = time.perf_counter()
    result = transfer(content, style_preset, n_iter=args.iters)
    transfer_s = time.perf_counter() - t0
    sf.write(work / "transfer10.wav", result.audio, s.sample_rate)
    ys = Yardstick(s)
    g_style = ys.gram(style)
    gap = ys.style_gap_closed(result.audio, content, g_style)
    dist = ys.content_distance(result.audio, content)
    ys_s = ys.settings

    budget = args.iters + args.iters // 4 + 1  # transfer's evaluation budget for the segment
    evals_note = ("" if result.evaluations >= budget else
                  ": L-BFGS stops early once its line search can make no more progress")
    body = f"""## Foundation: preset build and offline transfer

`scripts/bench_foundation.py` on {machine()}. Music: Debian's Wesnoth soundtrack (GPL), fetched by
`scripts/fetch_music.sh`. Default settings: {s.describe()}.

| measure | value |
| --- | --- |
| preset build, {audio_s / 60:.1f} min of music ({', '.join(BUILD_TRACKS)}) | {build_s:.1f} s, **{audio_s / build_s:.0f}x real time** (median of {args.runs}: {', '.join(f'{t:.1f}' for t in times)} s) |
| of which: generating the 45 M network weights | {weights_s:.1f} s |
| preset size | **{size / 1024:.0f} KiB** (rank {preset.rank}, {100 * preset.energy_kept:.4f} % of Gram energy) |
| offline transfer, 10 s of `{CONTENT_TRACK}` in the style of 60 s of `{STYLE_TRACK}`, {args.iters} L-BFGS iterations, 100 Griffin-Lim | {transfer_s:.0f} s ({transfer_s / 10:.1f}x audio time; {result.evaluations} loss evaluations{evals_note}) |
| style gap closed (yardstick) | **{gap:.2f}** |
| content distance (yardstick) | {dist:.2f} |

The yardstick is a different random network ({ys_s.n_filters} filters, width {ys_s.width}, seed {ys_s.seed});
style gap closed = 1 − ‖G(out) − G(style)‖ / ‖G(content) − G(style)‖ on it, content distance =
‖F(out) − F(content)‖ / ‖F(content)‖. The style Gram there comes from the style audio itself, not the preset.
"""
    write_section("foundation", body)
    print(body)


if __name__ == "__main__":
    main()
