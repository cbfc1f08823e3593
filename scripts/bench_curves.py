"""Style against content kept, as curves: the engine swept over its style weight beside a playable,
causal baseline swept over its strength, on the quality benchmark's real-music pairs.

The baseline is the per-bin mean+spread match a stream can play: each bin's log-magnitude moved
from the input's running statistics (from the stream's start, nothing of its future) to the
preset's, interpolated in log-magnitude by its strength (0 = the input, 1 = the full match), the
input's phase kept, peak-normalised. Every output is brought to the input's loudness (RMS) before
it is measured, so level buys nothing. Where both curves cover the same range of content kept,
they are compared at equal content kept by linear interpolation, on the clip and on the clip
started 1 s and 2 s later (`WINDOWS`), and the verdict is the median over those windows. A second
count compares with the baseline's points within the flatness bar the engine is held to.

Run: .venv/bin/python scripts/bench_curves.py   (writes the 'curves' section of BENCHMARKS.md and
docs/bench/curves-N.png). Needs `make bench-deps` and the quality benchmark's music.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_measures as qm
from bench_quality import PAIRS, STYLE_AT, STYLE_LEN, cut, music, run_engine
from benchmd import ROOT, machine, write_section

from mst_live import FeatureNet, Settings, StyleEngine, build_preset
from mst_live.compute import choose
from mst_live.dsp.bin_match import BinStats
from mst_live.dsp.stft import istft, stft
from mst_live.io.files import read_mono
from mst_live.palette import FULL_AT
from mst_live.params import PARAMS, LiveParams
from mst_live.preset import Preset

CLIP = 10.0
# The comparisons are taken on the clip and on the clip started 1 s and 2 s later: on one 10 s
# clip a comparison swings by up to 0.16 with a 1 s shift, so the verdict is the median over these.
WINDOWS = (0.0, 1.0, 2.0)
ENGINE_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0)  # PARAMS["style_weight"].default among them
BASELINE_STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
# The hiss bar the engine is held to up to its default (flatness over the flatter of input and
# style); a second count compares with only the baseline's points that keep to it as well.
FLATNESS_BAR = 1.5
MORE_STEPS = (16, 32)  # what more optimiser steps per block buy, at these style weights:
MORE_STEPS_WEIGHTS = (1.0, 2.0)
STYLE_MEASURES = (("gram", "Gram gap"), ("corr", "corr gap"))
CONTENT_MEASURES = (("chroma", "chroma cosine"), ("onset", "onset correlation"))
PICTURES = ROOT / "docs" / "bench"


def causal_match(x: np.ndarray, mean: np.ndarray, std: np.ndarray, strength: float) -> np.ndarray:
    """The mean+spread match with the input's running statistics, at ``strength``, peak-normalised."""
    spec = stft(x, n_fft=qm.N_FFT, hop_length=qm.HOP)
    lx = np.log1p(np.abs(spec))
    stats, out = BinStats(lx.shape[0]), np.empty_like(lx)
    for t in range(lx.shape[1]):
        stats.add(lx[:, t : t + 1])
        m, s = stats.mean(), stats.std() + 1e-6
        matched = np.maximum((lx[:, t] - m) / s * std + mean, 0.0)
        out[:, t] = (1 - strength) * lx[:, t] + strength * matched
    y = istft(np.expm1(out) * np.exp(1j * np.angle(spec)), hop_length=qm.HOP, length=x.size).astype(np.float32)
    return y * (0.98 / max(float(np.max(np.abs(y))), 1e-9))


def measure(y: np.ndarray, x: np.ndarray, sm: qm.StyleMeasures, ref_notes: np.ndarray | None,
            flat_ref: float) -> dict:
    """The style, content and hiss measures of output ``y`` of input ``x``; note F1 where
    ``ref_notes`` are given (transcribing is the slow part)."""
    y = qm.fit(np.nan_to_num(y.astype(np.float32)), x.size)
    y = y * (qm.rms(x) / qm.rms(y))  # one loudness: level buys nothing
    out = {"gram": sm.gram_gap(y, x), "corr": sm.corr_gap(y, x), "chroma": qm.chroma_cosine(y, x),
           "onset": qm.onset_correlation(y, x), "flat": qm.flatness(y) / flat_ref}
    if ref_notes is not None:
        out["f1"] = qm.onset_f1(qm.transcribe(y), ref_notes)
    return out


def table_row(name: str, knob: str, p: dict) -> str:
    """One output's row of the section's table; the baseline has no rendering speed."""
    speed = f"{p['speed']:.1f}" if "speed" in p else "–"
    return (f"| {name} | {knob} | {p['gram']:.2f} | {p['corr']:.2f} | {p['chroma']:.2f} | {p['onset']:.2f} | "
            f"{p['f1']:.2f} | {p['flat']:.2f} | {speed} |")


def at_equal_content(points: list[dict], content: str, style: str, where: float) -> float | None:
    """The curve's style measure at ``where`` on the content measure, interpolated; None outside it."""
    pts = sorted((p[content], p[style]) for p in points)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if not xs[0] <= where <= xs[-1]:
        return None
    return float(np.interp(where, xs, ys))


def compare(engine: list[dict], base: list[dict]) -> dict[str, float | None]:
    """For each style and content measure: engine minus baseline at the engine's own points of
    content kept that the baseline's curve covers (median), or None where the curves do not overlap."""
    out = {}
    for s_key, _ in STYLE_MEASURES:
        for c_key, _ in CONTENT_MEASURES:
            diffs = [e[s_key] - b for e in engine
                     if (b := at_equal_content(base, c_key, s_key, e[c_key])) is not None]
            out[f"{s_key} vs {c_key}"] = float(np.median(diffs)) if diffs else None
    return out


def verdict(windows: list[dict[str, float | None]]) -> tuple[str, int]:
    """Each comparison's median over the clip windows (each window's own value in brackets), and
    how many of the comparisons put the engine at or above the baseline."""
    parts, above = [], 0
    for key in windows[0]:
        got = [w[key] for w in windows if w[key] is not None]
        each = ", ".join("none" if w[key] is None else f"{w[key]:+.2f}" for w in windows)
        if not got:
            parts.append(f"{key}: no overlap ({each})")
            continue
        mid = float(np.median(got))
        above += mid >= 0.0
        parts.append(f"{key}: **{mid:+.2f}** ({each})")
    return "; ".join(parts), above


def sweep(x: np.ndarray, preset: Preset, net: FeatureNet, sm: qm.StyleMeasures, flat_ref: float,
          ref_notes: np.ndarray | None = None) -> tuple[list[dict], list[dict]]:
    """The engine over its style weights and the baseline over its strengths, on clip ``x``."""
    engine, base = [], []
    for w in ENGINE_WEIGHTS:
        y, speed = run_engine(StyleEngine(preset, net=net, params=LiveParams(style_weight=w)), x)
        engine.append({"w": w, "speed": speed, **measure(y, x, sm, ref_notes, flat_ref)})
        print("engine", engine[-1], flush=True)
    for a in BASELINE_STRENGTHS:
        y = causal_match(x, preset.bin_mean.astype(np.float64), preset.bin_std.astype(np.float64), a)
        base.append({"a": a, **measure(y, x, sm, ref_notes, flat_ref)})
        print("baseline", base[-1], flush=True)
    return engine, base


def picture(path: Path, label: str, engine: list[dict], base: list[dict], steps: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(9, 7))
    for i, (s_key, s_name) in enumerate(STYLE_MEASURES):
        for j, (c_key, c_name) in enumerate(CONTENT_MEASURES):
            ax = axes[i][j]
            for pts, name, knob, mark in ((engine, "engine (style weight)", "w", "o-"),
                                          (base, "causal mean+spread (strength)", "a", "s--")):
                ax.plot([p[c_key] for p in pts], [p[s_key] for p in pts], mark, label=name)
                for p in pts:
                    ax.annotate(f"{p[knob]:g}", (p[c_key], p[s_key]), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
            for n_steps, mark in zip(MORE_STEPS, ("^", "v"), strict=True):
                pts = [p for p in steps if p["steps"] == n_steps]
                ax.plot([p[c_key] for p in pts], [p[s_key] for p in pts], mark, label=f"engine, {n_steps} steps")
            ax.set_xlabel(f"{c_name} (content kept)")
            ax.set_ylabel(f"{s_name} (style)")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(label, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    s = Settings()
    root = music()
    work = ROOT / ".cache/curves"
    work.mkdir(parents=True, exist_ok=True)
    PICTURES.mkdir(parents=True, exist_ok=True)
    net = FeatureNet(s, precision=choose("cpu", "auto", network=s.network).precision)
    default = PARAMS["style_weight"].default
    sections, total_above, total_clean = [], 0, 0
    for n, (label, content_file, c_at, style_file) in enumerate(PAIRS, 1):
        content = read_mono(root / content_file, s.sample_rate)
        x = cut(content, c_at, CLIP)
        style = cut(read_mono(root / style_file, s.sample_rate), STYLE_AT, STYLE_LEN)
        sf.write(work / "style.wav", style, s.sample_rate)
        preset = build_preset([work / "style.wav"], settings=s)
        sm = qm.StyleMeasures(s, style, CLIP)
        style_flat = qm.flatness(style)
        flat_ref = max(qm.flatness(x), style_flat)
        print(label, flush=True)
        ref_notes = qm.transcribe(x)
        engine, base = sweep(x, preset, net, sm, flat_ref, ref_notes)
        curves = [(engine, base)]
        for shift in WINDOWS[1:]:
            xw = cut(content, c_at + shift, CLIP)
            curves.append(sweep(xw, preset, net, sm, max(qm.flatness(xw), style_flat)))
        windows = [compare(e, b) for e, b in curves]
        clean = [compare(e, [p for p in b if p["flat"] <= FLATNESS_BAR]) for e, b in curves]
        steps = []
        for n_steps in MORE_STEPS:
            for w in MORE_STEPS_WEIGHTS:
                y, speed = run_engine(StyleEngine(preset, net=net, params=LiveParams(style_weight=w, steps=n_steps)), x)
                steps.append({"w": w, "steps": n_steps, "speed": speed, **measure(y, x, sm, ref_notes, flat_ref)})
                print(label, "steps", steps[-1], flush=True)
        pic = PICTURES / f"curves-{n}.png"
        picture(pic, label, engine, base, steps)
        rows = ["| output | knob | Gram gap | corr gap | chroma cos | onset corr | note F1 | flatness excess | x real time |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        rows += [table_row("**engine, default**" if p["w"] == default else "engine", f"style weight {p['w']:g}", p)
                 for p in engine]
        rows += [table_row(f"engine, {p['steps']} steps", f"style weight {p['w']:g}", p) for p in steps]
        rows += [table_row("causal mean+spread", f"strength {p['a']:g}", p) for p in base]
        said, above = verdict(windows)
        said_clean, above_clean = verdict(clean)
        total_above += above
        total_clean += above_clean
        up_to_default = max(p["flat"] for p in engine if p["w"] <= default)
        sections.append(f"**{label}**\n\n![{label}: style against content kept](docs/bench/curves-{n}.png)\n\n"
                        + "\n".join(rows) + f"\n\nEngine minus baseline at equal content kept (the median over the "
                        f"engine's points the baseline covers; in bold its median over {len(WINDOWS)} windows, the clip and the "
                        f"clip started {' s and '.join(f'{w:g}' for w in WINDOWS[1:])} s later, each window's in "
                        f"brackets): "
                        f"{said}. Largest flatness excess up to the default: {up_to_default:.2f}. Against the "
                        f"baseline's points with a flatness excess of at most {FLATNESS_BAR:g}: {said_clean}.\n")
        print(sections[-1], flush=True)
    body = "\n".join([
        "## Style against content kept: the engine's knob beside the causal mean+spread match",
        "",
        f"`scripts/bench_curves.py` on {machine()}. The quality section's four real-music pairs (10 s of "
        "content; the preset from 60 s of the style; the tables and pictures are the first 10 s window, the "
        f"comparisons under them the median over {len(WINDOWS)}). **engine**: rendered file to file at its defaults but "
        f"for the style weight, swept over {', '.join(f'{w:g}' for w in ENGINE_WEIGHTS)} (default {default:g}), "
        f"with {PARAMS['steps'].default} optimiser steps per block (above style weight 1 the preset's palette of the "
        f"style's own sound fades in, all of it from {FULL_AT:g}); **engine, N steps**: the same at "
        f"{' and '.join(str(n) for n in MORE_STEPS)} steps, at style weights "
        f"{' and '.join(f'{w:g}' for w in MORE_STEPS_WEIGHTS)} (rendered without a deadline: live, a block gets "
        "what the machine affords, see the live section). "
        "**causal mean+spread**: each bin's log-magnitude moved from the input's running mean and spread (from "
        "the stream's start, no future) to the preset's, interpolated in log-magnitude by its strength "
        f"({', '.join(f'{a:g}' for a in BASELINE_STRENGTHS)}), the input's phase, peak-normalised. Every "
        "output is brought to the input's RMS before it is measured. Measures as in the quality section; "
        "**x real time**: the engine's rendering speed in that run, audio seconds per second (above 1 it "
        "keeps up; live, a block gets the steps the machine affords). A "
        "curve above and to the right is better (more style at the same content kept).",
        "",
        *sections,
        f"Comparisons with the engine at or above the baseline (bold medians): {total_above} of "
        f"{len(PAIRS) * len(STYLE_MEASURES) * len(CONTENT_MEASURES)}; against the baseline's points within "
        f"the flatness bar the engine is held to ({FLATNESS_BAR:g}): {total_clean}.",
    ])
    write_section("curves", body)


if __name__ == "__main__":
    main()
