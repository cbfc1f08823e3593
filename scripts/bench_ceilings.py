"""How far the known-answer measure can be moved by what a spectral reshaper could know.

The known-answer test asks how far an output moves from the input toward the truth (the same notes
on the style's instrument) on level-normalised log-mel. Here the truth itself is used, with
hindsight, to build the best output of each kind of reshaping over the input's own sound: one EQ,
a loudness contour, a spectral shape that follows the played pitch, band envelopes that follow the
time since each onset, and band envelopes frame by frame. Each is a ceiling for a causal method of
that kind, which would have to guess from the preset what is taken here from the truth. The same
reshapings learned from the style recording instead (what a preset could hold) and the engine sit
beside them, in the same run, with the test's guards: chroma to the input and flatness against the
flatter of input and truth.

Run: .venv/bin/python scripts/bench_ceilings.py   (writes the 'ceilings' section of BENCHMARKS.md)
Needs `make bench-deps` and fluidsynth + fluid-soundfont-gm, as the quality benchmark.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_measures as qm
from bench_quality import TIMBRE_PAIRS, run_engine, timbre_clips
from benchmd import ROOT, machine, write_section

from mst_live import FeatureNet, Settings, StyleEngine, build_preset
from mst_live.compute import choose
from mst_live.dsp.stft import istft, stft
from mst_live.params import LiveParams

N, H, SR = qm.N_FFT, qm.HOP, qm.SR
BANDS = librosa.filters.mel(sr=SR, n_fft=N, n_mels=40)
HARMONICS = np.arange(0.25, 30.0, 0.25)  # frequency as a multiple of the frame's pitch
MAX_AGE = 48  # frames since the last onset, about 1.1 s
# the test's bar at the strong end: mean moved, least moved, chroma kept, flatness over the flatter source
BAR = {"mean": 0.35, "least": 0.15, "chroma": 0.8, "flatness": 1.5}

Reshape = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input, reference) -> output


def _power(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    spec = stft(y, n_fft=N, hop_length=H)
    return spec, np.abs(spec) ** 2


def _band_gains(db: np.ndarray) -> np.ndarray:
    """40 band gains in dB per frame, spread over the STFT bins (log-interpolated)."""
    return np.exp((BANDS.T @ (db / 20 * np.log(10))) / (BANDS.sum(axis=0)[:, None] + 1e-9))


def _band_db(p: np.ndarray) -> np.ndarray:
    return 10 * np.log10(BANDS @ p + 1e-10) - 10 * np.log10(p.sum() / p.shape[1] + 1e-10)


def static_eq(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Each bin's long-term power moved to the reference's: one EQ for the whole clip."""
    (sx, px), (_, pr) = _power(x), _power(ref)
    gain = np.sqrt((pr.mean(axis=1) + 1e-12) / (px.mean(axis=1) + 1e-12))
    return istft(sx * gain[:, None], hop_length=H, length=x.size)


def loudness_contour(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Each frame brought to the reference's loudness in that frame (the truth's, so hindsight only)."""
    (sx, px), (_, pr) = _power(x), _power(ref)
    n = min(px.shape[1], pr.shape[1])
    gain = np.ones(px.shape[1])
    gain[:n] = np.sqrt((pr[:, :n].sum(axis=0) + 1e-10) / (px[:, :n].sum(axis=0) + 1e-10))
    return istft(sx * gain[None], hop_length=H, length=x.size)


def _pitch(y: np.ndarray) -> np.ndarray:
    f0, voiced, _ = librosa.pyin(y, fmin=100, fmax=1500, sr=SR, frame_length=N, hop_length=H)
    return np.where(voiced, f0, np.nan)


def _harmonic_profile(p: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """Each voiced frame's level in dB at multiples of its pitch, relative to the frame's power."""
    freqs = np.arange(p.shape[0]) * SR / N
    out = np.full((HARMONICS.size, p.shape[1]), np.nan)
    for t in np.flatnonzero(np.isfinite(f0[: p.shape[1]])):
        out[:, t] = (np.interp(HARMONICS * f0[t], freqs, 10 * np.log10(p[:, t] + 1e-10), right=np.nan)
                     - 10 * np.log10(p[:, t].sum() + 1e-10))
    return out


def pitch_relative_shape(x: np.ndarray, ref: np.ndarray, limit_db: float = 24.0) -> np.ndarray:
    """Each voiced frame's spectrum, in multiples of its pitch, moved to the reference's average
    shape there: a timbre that follows the played note (partials and what lies between them)."""
    (sx, px), (_, pr) = _power(x), _power(ref)
    f0x = _pitch(x)[: px.shape[1]]
    target = np.nanmean(_harmonic_profile(pr, _pitch(ref)), axis=1)
    own = _harmonic_profile(px, f0x)
    freqs = np.arange(px.shape[0]) * SR / N
    gain_db = np.zeros(px.shape)
    for t in np.flatnonzero(np.isfinite(f0x)):
        d = np.convolve(np.nan_to_num(target - own[:, t]), np.ones(3) / 3, mode="same")
        gain_db[:, t] = np.clip(np.interp(freqs / f0x[t], HARMONICS, d, left=0, right=0), -limit_db, limit_db)
    return istft(sx * 10 ** (gain_db / 20), hop_length=H, length=x.size)


def _onset_age(y: np.ndarray, n: int) -> np.ndarray:
    onsets = set(librosa.onset.onset_detect(y=y, sr=SR, hop_length=H).tolist())
    age, last = np.empty(n, int), -MAX_AGE
    for t in range(n):
        last = t if t in onsets else last
        age[t] = min(t - last, MAX_AGE - 1)
    return age


def _envelope_by_age(y: np.ndarray) -> np.ndarray:
    """Median band level (dB, relative to the clip's mean power) by frames since the last onset."""
    _, p = _power(y)
    e, age = _band_db(p), _onset_age(y, p.shape[1])
    return np.stack([np.median(e[:, age == a], axis=1) if (age == a).sum() > 2 else np.zeros(e.shape[0])
                     for a in range(MAX_AGE)], axis=1)


def envelope_by_onset_age(x: np.ndarray, ref: np.ndarray, limit_db: float = 24.0) -> np.ndarray:
    """Band envelopes that follow the time since each onset (attack, decay, sustain) moved from the
    input's to the reference's."""
    sx, px = _power(x)
    age = _onset_age(x, px.shape[1])
    gain = np.clip(_envelope_by_age(ref)[:, age] - _envelope_by_age(x)[:, age], -limit_db, limit_db)
    return istft(sx * _band_gains(gain), hop_length=H, length=x.size)


def band_envelope_per_frame(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Each frame's 40 band levels moved to the reference's in that frame (the truth's: hindsight)."""
    (sx, px), (_, pr) = _power(x), _power(ref)
    n = min(px.shape[1], pr.shape[1])
    gain = np.zeros((BANDS.shape[0], px.shape[1]))
    gain[:, :n] = 10 * np.log10((BANDS @ pr[:, :n] + 1e-10) / (BANDS @ px[:, :n] + 1e-10))
    return istft(sx * _band_gains(gain), hop_length=H, length=x.size)


HINDSIGHT: list[tuple[str, Reshape]] = [
    ("one EQ", static_eq),
    ("loudness contour", loudness_contour),
    ("pitch-relative spectral shape", pitch_relative_shape),
    ("band envelopes by time since onset", envelope_by_onset_age),
    ("band envelopes frame by frame", band_envelope_per_frame),
]
FROM_STYLE = {"one EQ", "pitch-relative spectral shape", "band envelopes by time since onset"}
ENGINE_WEIGHTS = (1.0, 4.0, 10.0)


def moved(y: np.ndarray, x: np.ndarray, truth: np.ndarray) -> float:
    """Share of the input's log-mel distance to ``truth`` that ``y`` removed."""
    return 1 - qm.logmel_distance(y, truth) / qm.logmel_distance(x, truth)


def judge(y: np.ndarray, x: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Share of the way moved to the truth, chroma to the input, flatness over the flatter source."""
    y = qm.fit(np.nan_to_num(np.asarray(y, np.float32)), x.size)
    return moved(y, x, truth), qm.chroma_cosine(y, x), qm.flatness(y) / max(qm.flatness(x), qm.flatness(truth))


def main() -> None:
    s = Settings()
    work = ROOT / ".cache/quality"
    work.mkdir(parents=True, exist_ok=True)
    net = FeatureNet(s, precision=choose("cpu", "auto", network=s.network).precision)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for a, b in TIMBRE_PAIRS:
        x, truth, style, style_path = timbre_clips(work, s, a, b)
        for name, fn in HINDSIGHT:
            rows.setdefault(f"{name}, from the truth (hindsight)", []).append(judge(fn(x, truth), x, truth))
        for name, fn in HINDSIGHT:
            if name in FROM_STYLE:
                rows.setdefault(f"{name}, from the style recording", []).append(judge(fn(x, style), x, truth))
        preset = build_preset([style_path], settings=s)
        for w in ENGINE_WEIGHTS:
            y = run_engine(StyleEngine(preset, net=net, params=LiveParams(style_weight=w)), x)[0]
            rows.setdefault(f"engine, style weight {w:g}", []).append(judge(y, x, truth))
        print(a, "→", b, {k: round(v[-1][0], 2) for k, v in rows.items()}, flush=True)

    labels = [f"{a} → {b}" for a, b in TIMBRE_PAIRS]
    lines = ["| reshaping | " + " | ".join(labels) + " | mean | least | chroma (min) | flatness (max) | bar |",
             "|" + " --- |" * (len(labels) + 6)]
    for name, vals in rows.items():
        v = np.array(vals)
        ok = (v[:, 0].mean() >= BAR["mean"] and v[:, 0].min() >= BAR["least"] and v[:, 1].min() >= BAR["chroma"]
              and v[:, 2].max() <= BAR["flatness"])
        lines.append(f"| {name} | " + " | ".join(f"{m:.2f}" for m in v[:, 0])
                     + f" | {v[:, 0].mean():.2f} | {v[:, 0].min():.2f} | {v[:, 1].min():.2f} | {v[:, 2].max():.2f} | "
                     + ("meets" if ok else "no") + " |")
    table = "\n".join(lines)
    print(table, flush=True)
    body = f"""## Known answer: what reshaping the input's own sound can reach

`scripts/bench_ceilings.py` on {machine()}. The quality section's six known-answer pairs. Each row is
one kind of reshaping of the input's own sound, built from the truth itself (hindsight: the best
that kind can do, a ceiling for any causal method of that kind), from the style recording (what a
preset could hold), or the engine. Cells: the share of the input's log-mel distance to the truth
removed (1 = the truth). **bar**: mean ≥ {BAR['mean']}, no pair below {BAR['least']}, chroma to the input
≥ {BAR['chroma']} and flatness ≤ {BAR['flatness']}× the flatter of input and truth on every pair.

- **one EQ**: each bin's long-term power moved to the reference's.
- **loudness contour**: each frame at the truth's loudness in that frame.
- **pitch-relative spectral shape**: each voiced frame's spectrum, read in multiples of its pitch
  (pYIN), moved to the reference's average shape there (±24 dB).
- **band envelopes by time since onset**: 40 mel-band levels by frames since the last onset (to
  1.1 s), moved from the input's to the reference's (±24 dB).
- **band envelopes frame by frame**: each frame's 40 mel-band levels moved to the truth's in that
  frame, which needs the truth itself.

{table}
"""
    write_section("ceilings", body)


if __name__ == "__main__":
    main()
