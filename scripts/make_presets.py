"""Compose, render and build the shipped presets and the demo clip.

Run: .venv/bin/python scripts/make_presets.py [NAME ...] [--mode=low] [--render]
(needs Debian fluidsynth and fluid-soundfont-gm; a style track already in .cache/styles is reused
unless --render)
Writes presets/NAME.npz for each style (and NAME-low.npz, the same music for `--latency low`)
and presets/demo.flac; the rendered style audio stays in .cache/styles (it can be rebuilt at any
time, so it is not committed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compose import COMPOSERS, demo_riff, render

from mst_live import Settings, build_preset
from mst_live.io.files import read_mono
from mst_live.latency import MODES

ROOT = Path(__file__).resolve().parent.parent


def write_excerpt(wav: Path, out: Path, sample_rate: int, *, start: float = 20.0, seconds: float = 8.0) -> None:
    """A few seconds of the style track beside its preset: what the demo picture shows as 'style'."""
    y = read_mono(wav, sample_rate)[int(start * sample_rate) : int((start + seconds) * sample_rate)]
    sf.write(out, y, sample_rate)


def main() -> None:
    only = {a for a in sys.argv[1:] if not a.startswith("--")}
    # --mode low: only the presets of that latency mode (the others stay as they are)
    modes = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--mode=")] or list(MODES)
    cache = ROOT / ".cache/styles"
    cache.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    for name, compose in COMPOSERS.items():
        if only and name not in only:
            continue
        wav = cache / f"{name}.wav"
        if not wav.exists() or "--render" in sys.argv:
            render(compose(), wav)
        dur = sf.info(str(wav)).duration
        for mode in (MODES[m] for m in modes):
            preset = build_preset([wav], settings=mode.settings)
            out = preset.save(ROOT / "presets" / f"{name}{mode.suffix}.npz")
            print(f"{name}: {dur:.0f} s of music -> {out.name}, rank {preset.rank}, {out.stat().st_size // 1024} KiB")
        if "normal" in modes:
            write_excerpt(wav, ROOT / "presets" / f"{name}.excerpt.ogg", settings.sample_rate)
    if (not only and "normal" in modes) or "demo" in only:
        wav = cache / "demo.wav"
        render(demo_riff(), wav)
        y = read_mono(wav, settings.sample_rate)[: 10 * settings.sample_rate]
        nz = np.flatnonzero(np.abs(y) > 1e-3)
        y = y[: nz[-1] + settings.sample_rate // 4] if nz.size else y
        y = 0.5 * y / max(float(np.max(np.abs(y))), 1e-9)
        sf.write(ROOT / "presets" / "demo.flac", y, settings.sample_rate)
        print(f"demo: {y.size / settings.sample_rate:.1f} s -> presets/demo.flac")


if __name__ == "__main__":
    main()
