"""Where does the engine's shortfall against the per-bin mean+spread match come from?

The match that bench_quality compares with is computed from the whole clip at once: it knows
each bin's mean and spread over all ten seconds, future included. The engine's first stage does
the same map from running statistics, with limits, then follows the input's level and passes a
peak limiter. This script takes those differences away one at a time, on the same four pairs
and with the same measures, so that each one's share of the gap is measured, not guessed.

Run: .venv/bin/python scripts/bench_style_gap.py   (writes the 'style-gap' section of BENCHMARKS.md)
Needs what bench_quality needs (`make bench-deps`, the music from scripts/fetch_music.sh).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality as bq
import quality_measures as qm
from benchmd import machine, write_section

from mst_live import FeatureNet, Settings, build_preset
from mst_live.compute import choose
from mst_live.dsp.bin_match import BinStats
from mst_live.dsp.limiter import PeakLimiter
from mst_live.dsp.stft import stft
from mst_live.engine import StyleEngine
from mst_live.io.files import read_mono
from mst_live.params import PARAMS, LiveParams

WARM = 30.0  # seconds of the same piece heard before the clip, for the warmed row
OPEN_CHANGE = PARAMS["max_change"].hi  # the largest move LiveParams allows
OPEN_RATIO = 100.0


def clip_stats(x: np.ndarray, s: Settings) -> tuple[np.ndarray, np.ndarray]:
    """Each bin's log-magnitude mean and spread over the whole clip: what only hindsight knows."""
    lx = np.log1p(np.abs(stft(x, n_fft=s.n_fft, hop_length=s.hop_length)))
    stats = BinStats(lx.shape[0])
    stats.add(lx)
    return stats.mean(), stats.std()


def render(preset, net, x: np.ndarray, s: Settings, *, steps: int | None = None, known: bool = False,
           open_limits: bool = False, follow: float = 1.0, warm: np.ndarray | None = None) -> np.ndarray:
    """The engine over ``x``; ``known`` fixes the first stage's input statistics at the clip's own,
    ``warm`` is played first (and cut off the output)."""
    params = LiveParams(**({"steps": steps} if steps is not None else {}), **({"max_change": OPEN_CHANGE} if open_limits else {}))
    engine = StyleEngine(preset, net=net, params=params, follow=follow)
    m = engine.matcher
    if known:
        m.prior_mean, m.prior_std = clip_stats(x, s)
        m.prior_frames = 1e9  # the running sums then never move them
    if open_limits:
        m.max_ratio = OPEN_RATIO
    played = x if warm is None else np.concatenate([warm, x])
    y, _ = bq.run_engine(engine, played)
    return y[played.size - x.size:]


def score(y: np.ndarray, x: np.ndarray, sm: qm.StyleMeasures, flat_ref: float) -> list[str]:
    y = qm.fit(np.nan_to_num(y.astype(np.float32)), x.size)
    return [f"{sm.gram_gap(y, x):.2f}", f"{sm.corr_gap(y, x):.2f}", f"{qm.chroma_cosine(y, x):.2f}",
            f"{qm.onset_correlation(y, x):.2f}", f"{qm.flatness(y) / flat_ref:.2f}",
            f"{20 * np.log10(np.abs(y).max() + 1e-12):+.1f}"]


def main() -> None:
    s = Settings()
    root = bq.music()
    work = bq.ROOT / ".cache/quality"
    work.mkdir(parents=True, exist_ok=True)
    net = FeatureNet(s, precision=choose("cpu", "auto", network=s.network).precision)
    head = "| output | " + " | ".join(p[0].split(" (")[0] for p in bq.PAIRS) + " |"
    names = [
        "mean+spread (whole clip, no limits, float output)",
        "mean+spread, limited",
        "mean+spread, limiter released over 1 s",
        "mean+spread, one gain that brings its peak to full scale",
        "first stage alone, as the engine runs it (0 steps)",
        f"first stage alone, after {WARM:.0f} s of the same piece",
        "first stage alone, its limits opened and the level follower off",
        "first stage alone, the clip's own statistics",
        f"… and its limits opened ({OPEN_CHANGE:g} dB, spread ratio {OPEN_RATIO:g})",
        "… and the level follower off",
        f"engine at its defaults ({PARAMS['steps'].default} steps)",
        "engine, the clip's own statistics",
    ]
    cells: dict[str, list[list[str]]] = {n: [] for n in names}
    for label, content_file, c_at, style_file in bq.PAIRS:
        track = read_mono(root / content_file, s.sample_rate)
        x, warm = bq.cut(track, c_at, bq.CLIP), bq.cut(track, c_at - WARM, WARM)
        style = bq.cut(read_mono(root / style_file, s.sample_rate), bq.STYLE_AT, bq.STYLE_LEN)
        sf.write(work / "style.wav", style, s.sample_rate)
        preset = build_preset([work / "style.wav"], settings=s)
        sm = qm.StyleMeasures(s, style, bq.CLIP)
        flat_ref = max(qm.flatness(x), qm.flatness(style))
        base = dict(bq.baselines(x, style))
        ms = base["mean+spread"]
        outs = [
            ms, base["mean+spread, limited"], PeakLimiter(qm.SR, release_ms=1000.0).process(ms),
            ms * (0.98 / np.abs(ms).max()),
            render(preset, net, x, s, steps=0),
            render(preset, net, x, s, steps=0, warm=warm),
            render(preset, net, x, s, steps=0, open_limits=True, follow=0.0),
            render(preset, net, x, s, steps=0, known=True),
            render(preset, net, x, s, steps=0, known=True, open_limits=True),
            render(preset, net, x, s, steps=0, known=True, open_limits=True, follow=0.0),
            render(preset, net, x, s),
            render(preset, net, x, s, known=True),
        ]
        for n, y in zip(names, outs, strict=True):
            cells[n].append(score(y, x, sm, flat_ref))
        print(label, {n: c[-1] for n, c in cells.items()}, flush=True)

    stage, limiter = StyleEngine(preset, net=net).matcher, PeakLimiter(qm.SR)  # their defaults, for the text
    measures = ["Gram gap", "corr gap", "chroma cos", "onset corr", "flatness excess", "peak dBFS"]
    lines = [head, "|" + " --- |" * (len(bq.PAIRS) + 1)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(" / ".join(c) for c in cells[n]) + " |")
    body = f"""## Where the style gap to the mean+spread match comes from

`scripts/bench_style_gap.py` on {machine()}. The four real-music pairs of the quality section, the
same measures; each cell is {" / ".join(measures)}. The mean+spread match the quality checks compare
with is computed from the whole 10 s clip at once, so it knows each bin's statistics over the
clip's future as well as its past; the engine's first stage does the same map from running
statistics (seeded with the style's own, worth {stage.prior_frames * s.hop_length / s.sample_rate:.0f} s), with each bin moved at most {PARAMS["max_change"].default:g} dB and its
spread scaled at most {stage.max_ratio:g}x, then follows the input's level and passes the peak limiter (ceiling {limiter.ceiling:g}).
The rows below take those differences away one at a time. The rows with the clip's own statistics
are not something a live engine can do: they need the whole clip before its first block.

The first four rows are the match itself and the ways to make it playable. Where its raw form sits
far above full scale (peak dBFS, last figure), its Gram gap is bought with that level: a limiter
keeps part of it at the onsets' expense, a slower limiter keeps more onsets and less Gram, and one
gain to full scale keeps every onset and none of the Gram.

{chr(10).join(lines)}
"""
    write_section("style-gap", body)


if __name__ == "__main__":
    main()
