"""The style's own sound: a palette of the style recording's spectral frames, and for each frame
played, the palette frames that sound the same notes.

Per-bin gains over the input's sound cannot turn a plucked note into a bowed one: with hindsight,
the truth's own EQ, loudness contour, pitch-relative spectral shape or onset envelopes move the
known-answer test 3-14 % of the way (BENCHMARKS.md, 'ceilings'). Frames of the style instrument
itself, chosen for the pitches being played and brought to the input's loudness frame by frame
(concatenative resynthesis), carry its partials, breath and decays. The strong end of the style
knob fades them in (`sound_share`).

Frames are matched on the notes that stand out, not on the shape of the spectrum: the semitones
(MIDI 28-108) that peak above their neighbours within the frame's top 30 dB, log-compressed. A
clarinet's missing even partials or a piano's bright attack then weigh little beside where the
partials are, and the noise between and around them not at all (at the top of the knob the
known answer moves 0.28 of the way where the square-root semitone energies moved 0.18, and the
orchestral pair's flatness excess is 1.27 where it was 4.75: BENCHMARKS.md). A palette
frame may also be played up to ``TRANSPOSE`` semitones higher or lower, its spectrum scaled
along frequency, so that a note the style recording never held comes out at the pitch played,
not at its neighbour's. The ``k`` best are averaged in log-magnitude, which steadies the choice
from frame to frame. Each palette frame also keeps its age in its note (`dsp.onsets`), and the
match prefers the style's frames as old in their notes as the frame played: a string just
plucked is bright, a second later dull (at the top of the knob the known answer moves 0.37 of
the way, its least pair 0.22, where pitch alone moved them 0.28 and 0.06). The palette keeps
each frame's level in dB below its own peak, quantised to 1/2 dB over 127 dB (one byte a bin):
2048 frames of a 1025-bin analysis are 2 MB. Over the whole knob the palette also gives the
style's envelope (`Palette.depth_db`): beyond the frame's own level move, no reshaping raises a
bin above it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .dsp.onsets import NoteLevel, OnsetClock, max_age
from .dsp.semitones import semitone_amplitudes
from .errors import ParameterError
from .settings import Settings

PALETTE_FRAMES = 2048  # frames a preset keeps: 48 s of the default analysis
STEP_DB = 0.5  # bytes 0-254: 0 to 127 dB under the frame's peak; 255: nothing (a stored floor would be hiss)
QUIET_DB = 40.0  # frames this far under the loudest so far (peak bin) are not kept: tails and noise
MATCHES = 4
TRANSPOSE = 2  # semitones a palette frame may be moved to the pitch played (a whole tone: formants barely move)
FULL_AT = 10.0  # the style weight at and above which the style's own sound has its largest share
# Its largest share: at the top a tenth of each bin's log-magnitude stays the input's own, reshaped
# by the optimiser, which keeps the notes played where the style's frames miss them (known answer
# at weight 10: mean 0.397 -> 0.411, least chroma 0.79 -> 0.85; docs/design-notes.md)
TOP_SHARE = 0.9
# How much a style frame's age in its note (`dsp.onsets`) counts beside its pitches, in cosine
# similarity lost from a frame just struck to one held (ages compared as log(1 + age), 0 to 1),
# older or younger alike (BENCHMARKS.md, 'quality' and 'curves'; docs/design-notes.md).
AGE_WEIGHT = 0.5
# How far the style's level in its notes may move a frame's from the level played (dB), and where
# a note played stops counting as sounding: this far under its loudest, fading out over the next
CONTOUR_DB = 30.0
SOUNDING_DB = 30.0
SOUNDING_FADE_DB = 10.0
# The style's level at each age in its notes, where its matches come out lower: this quantile of
# the levels of all its frames of that age (docs/design-notes.md, 'The style's level in its notes')
TYPICAL_LEVEL_QUANTILE = 0.5
# A bin may be raised no higher under its frame's peak than this share of the style's frames
# reach there (BENCHMARKS.md, 'curves'): the style's envelope, not a floor of its own.
ENVELOPE_QUANTILE = 0.65


def sound_share(style_weight: float) -> float:
    """How much of each bin's log-magnitude comes from the palette: none up to a style weight of 1
    (the reshaping alone), then rising with the log of the weight to ``TOP_SHARE`` at ``FULL_AT``."""
    if style_weight <= 1.0:
        return 0.0
    return TOP_SHARE * min(1.0, math.log(style_weight) / math.log(FULL_AT))


HEARD_DB = 30.0  # how far under a frame's strongest semitone the match looks for notes


def _notes(amp: torch.Tensor) -> torch.Tensor:
    """The notes that stand out in each of spectra, from their semitone amplitudes (81, n):
    each semitone that peaks above both neighbours within the frame's top ``HEARD_DB``, its
    amplitude log-compressed; where the partials are counts, their balance (the instrument) little
    and the spread and noise around them (which a dense mix makes look like every note) not at all."""
    floor = amp.max(dim=0, keepdim=True).values * 10 ** (-HEARD_DB / 20) + 1e-12
    heard = torch.log1p(amp / floor)
    above, below = torch.zeros_like(heard), torch.zeros_like(heard)
    above[:-1], below[1:] = heard[1:], heard[:-1]
    return torch.where((heard >= above) & (heard > below), heard, torch.zeros_like(heard))


def _unit(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x / (torch.linalg.vector_norm(x, dim=dim, keepdim=True) + 1e-12)


class PaletteSampler:
    """Keeps a uniform, seeded sample of up to ``size`` loud frames of a stream of any length
    (reservoir sampling), as a preset build reads its style files chunk by chunk, each with its
    age in its note."""

    def __init__(self, settings: Settings, *, size: int = PALETTE_FRAMES, seed: int = 0) -> None:
        self.frames = np.zeros((settings.n_bins, size), np.uint8)
        self.ages = np.zeros(size, np.uint8)
        self.levels = np.zeros(size, np.uint8)
        self.size, self.seen, self.loudest = size, 0, 0.0
        self._rng = np.random.default_rng(seed)
        self._clock = OnsetClock(settings)
        self._note_level = NoteLevel(settings)

    def new_stream(self) -> None:
        """The next frames start another recording: no note carries over."""
        self._clock.reset()
        self._note_level.reset()

    def add(self, magnitude: np.ndarray) -> None:
        """STFT magnitude frames (bins, n)."""
        mag = np.asarray(magnitude, np.float64)
        if not mag.shape[1]:
            return
        age = self._clock(mag)
        level = self._note_level((mag * mag).sum(axis=0), age)
        peak = mag.max(axis=0)
        self.loudest = max(self.loudest, float(peak.max()))
        loud = np.flatnonzero(peak > self.loudest * 10 ** (-QUIET_DB / 20))
        for t in loud:
            if self.seen < self.size:
                slot = self.seen
            else:
                slot = int(self._rng.integers(0, self.seen + 1))
                if slot >= self.size:
                    self.seen += 1
                    continue
            self.frames[:, slot] = quantise(mag[:, t])
            self.ages[slot] = age[t]
            self.levels[slot] = quantise_level(level[t])
            self.seen += 1

    def palette(self) -> np.ndarray:
        """The kept frames (bins, n), n ≤ size."""
        return self.frames[:, : min(self.seen, self.size)].copy()

    def palette_ages(self) -> np.ndarray:
        """Each kept frame's frames since its note's onset (n,), up to `dsp.onsets.max_age`."""
        return self.ages[: min(self.seen, self.size)].copy()

    def palette_levels(self) -> np.ndarray:
        """Each kept frame's level in its note (`dsp.onsets.NoteLevel`) as bytes (`quantise_level`)."""
        return self.levels[: min(self.seen, self.size)].copy()


def quantise_level(db: float) -> int:
    """A level in its note (dB, 0 or less) as a byte: half-dB steps down, 127 dB at most."""
    return int(min(254, round(-min(float(db), 0.0) / STEP_DB)))


def quantise(magnitude: np.ndarray) -> np.ndarray:
    """One frame's magnitudes as bytes: half-dB steps below its peak."""
    db = 20 * np.log10(np.maximum(magnitude, 1e-12) / max(float(magnitude.max()), 1e-12))
    return np.clip(np.round(-db / STEP_DB), 0, 255).astype(np.uint8)  # 127.5 dB down and below: nothing


class Palette:
    """The frames of a preset's palette, ready to match: ``frames`` as stored (uint8, bins x n), and
    their ages in their notes (n,) where the preset has them."""

    def __init__(self, frames: np.ndarray, settings: Settings, *, ages: np.ndarray | None = None,
                 levels: np.ndarray | None = None, transpose: int = TRANSPOSE) -> None:
        if frames.dtype != np.uint8 or frames.ndim != 2 or frames.shape[0] != settings.n_bins or not frames.shape[1]:
            raise ParameterError(f"a palette is uint8 frames ({settings.n_bins}, n ≥ 1), got {frames.dtype} {frames.shape}")
        if ages is not None and np.shape(ages) != (frames.shape[1],):
            raise ParameterError(f"a palette's ages are one per frame ({frames.shape[1]},), got {np.shape(ages)}")
        if levels is not None and np.shape(levels) != (frames.shape[1],):
            raise ParameterError(f"a palette's levels are one per frame ({frames.shape[1]},), got {np.shape(levels)}")
        self._held = max_age(settings.frame_rate)
        self.log_age = None if ages is None else _log_age(ages, self._held)
        self.level_db = None if levels is None else torch.from_numpy(-np.asarray(levels, np.float32) * np.float32(STEP_DB))
        self.typical_db = None if levels is None or ages is None else _typical_levels(ages, self.level_db.numpy(), self._held)
        log_mag = -frames.astype(np.float32) * (STEP_DB / 20 * math.log(10.0))  # ln of magnitude / peak
        power = np.where(frames == 255, 0.0, np.exp(2 * log_mag))
        power /= power.sum(axis=0, keepdims=True)
        # torch, not numpy, for the products: they run between optimiser steps, and a second
        # thread pool (numpy's BLAS) left spinning there halved the steps' speed on two cores
        self.log_power = torch.from_numpy(np.log(np.maximum(power, 1e-30)).astype(np.float32))  # unit power
        self.settings = settings
        self.shifts = torch.arange(-transpose, transpose + 1)
        notes = _notes(semitone_amplitudes(torch.from_numpy(power.astype(np.float32)), settings))  # (81, n)
        # each frame's semitone signature as if played t semitones higher, for every shift t: (shifts, 81, n)
        self.signatures = _unit(torch.stack([_roll_notes(notes, int(t)) for t in self.shifts]), dim=1)
        self._scale = _frequency_scalings(settings.n_bins, self.shifts)
        # how far under its frame's peak each bin sits in most of the style's frames (dB)
        self.depth_db = np.quantile(frames * np.float32(STEP_DB), ENVELOPE_QUANTILE, axis=1).astype(np.float32)

    @property
    def size(self) -> int:
        return self.signatures.shape[2]

    def match(self, magnitude: np.ndarray, *, ages: np.ndarray | None = None, amplitudes: torch.Tensor | None = None,
              levels: np.ndarray | None = None, k: int = MATCHES) -> np.ndarray:
        """For each frame (bins, n) of magnitudes: the log-magnitude average of the ``k`` palette
        frames whose pitches come closest when each may be transposed (and is played so), and
        with ``ages`` (n,) (`dsp.onsets.OnsetClock`) whose age in their notes comes closest too,
        at that frame's power (silence stays silence). With ``levels`` (n,), the frames' levels in
        their notes (`dsp.onsets.NoteLevel`), the power follows the level in theirs of the loudest
        of the matched frames instead (`contour_gain_db`), or the style's typical level at that age
        where that is higher: a style recording's release tails look like held notes to the onset
        clock, and the match, which favours their clean pitches, would drag a held note down.
        ``amplitudes``: the frames' `semitone_amplitudes`, where the caller has them already."""
        power = torch.from_numpy(np.asarray(magnitude, np.float32)) ** 2
        if amplitudes is None:
            amplitudes = semitone_amplitudes(power, self.settings)
        played = _unit(_notes(amplitudes), dim=0)  # (81, n)
        n_shifts = self.shifts.numel()
        sim = torch.einsum("an,sam->nms", played, self.signatures)  # (n, palette, shifts)
        if ages is not None and self.log_age is not None:
            apart = torch.abs(_log_age(ages, self._held)[:, None] - self.log_age[None, :])
            sim = sim - AGE_WEIGHT * apart[..., None]
        sim = sim.reshape(played.shape[1], -1)  # (n, palette x shifts)
        best = torch.topk(sim, min(k, sim.shape[1]), dim=1).indices  # (n, k)
        frame, shift = best // n_shifts, best % n_shifts
        lo, hi, frac = (m[shift] for m in self._scale)  # (n, k, bins): where each bin reads the frame from
        col = frame[..., None]
        moved = self.log_power[lo, col] * (1.0 - frac) + self.log_power[hi, col] * frac
        shape = torch.exp(moved.mean(dim=1)).T  # (bins, n)
        shape /= shape.sum(dim=0, keepdim=True)
        total = power.sum(dim=0, keepdim=True)
        if levels is not None and self.level_db is not None:
            played_db = torch.from_numpy(np.asarray(levels, np.float32))
            style_db = self.level_db[frame].max(dim=1).values
            if self.typical_db is not None and ages is not None:
                age = torch.from_numpy(np.minimum(ages, self._held).astype(np.int64))
                style_db = torch.maximum(style_db, self.typical_db[age])
            total = total * 10.0 ** (contour_gain_db(played_db, style_db) / 10.0)
        return torch.sqrt(shape * total).numpy()


def contour_gain_db(played_db: torch.Tensor, style_db: torch.Tensor) -> torch.Tensor:
    """The gain (dB) that gives frames at ``played_db`` in their notes the level ``style_db`` of
    the style's frames matched to them: a held note into a plucked style decays, a struck one into
    a bowed style holds. At most ``CONTOUR_DB`` either way, and a rise only while the note played
    still sounds: under ``SOUNDING_DB`` the player has let go, and the style's note stops too."""
    gain = torch.clamp(style_db - played_db, -CONTOUR_DB, CONTOUR_DB)
    sounding = torch.clamp((played_db + SOUNDING_DB + SOUNDING_FADE_DB) / SOUNDING_FADE_DB, 0.0, 1.0)
    return torch.where(gain > 0, gain * sounding, gain)


def _typical_levels(ages: np.ndarray, level_db: np.ndarray, held: int) -> torch.Tensor:
    """The `TYPICAL_LEVEL_QUANTILE` of the levels (dB) of the palette's frames of each age up to
    ``held``; -inf (no floor) at an age with fewer than four frames."""
    a = np.minimum(np.asarray(ages), held)
    out = np.full(held + 1, -np.inf, np.float32)
    for t in range(held + 1):
        if np.count_nonzero(a == t) >= 4:
            out[t] = np.quantile(level_db[a == t], TYPICAL_LEVEL_QUANTILE)
    return torch.from_numpy(out)


def _log_age(ages: np.ndarray, held: int) -> torch.Tensor:
    """Ages in their notes on the scale the match compares them: log(1 + age), 1 at ``held``."""
    a = np.minimum(np.asarray(ages, np.float32), held)
    return torch.from_numpy(np.log1p(a) / np.float32(math.log1p(held)))


def _roll_notes(notes: torch.Tensor, t: int) -> torch.Tensor:
    """Semitones (81, n) moved ``t`` semitones up (down when negative); what leaves the
    range is gone, what enters is silence."""
    out = torch.zeros_like(notes)
    if t >= 0:
        out[t:] = notes[: notes.shape[0] - t]
    else:
        out[:t] = notes[-t:]
    return out


def _frequency_scalings(n_bins: int, shifts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each shift t: the bins each output bin reads from to play a frame t semitones higher
    (its frequency over 2^(t/12)), the two neighbours and the weight of the upper one."""
    lo, hi, frac = [], [], []
    for t in shifts.tolist():
        src = np.arange(n_bins) / 2.0 ** (t / 12.0)
        below = np.minimum(np.floor(src), n_bins - 1)
        lo.append(below)
        hi.append(np.minimum(below + 1, n_bins - 1))
        frac.append(np.where(src < n_bins - 1, src - below, 0.0))
    return (torch.from_numpy(np.array(lo, np.int64)), torch.from_numpy(np.array(hi, np.int64)),
            torch.from_numpy(np.array(frac, np.float32)))


def geometric_blend(a: np.ndarray, b: np.ndarray, share: float) -> np.ndarray:
    """Magnitudes ``a`` moved ``share`` of the way to ``b`` in log-magnitude: a bin that is silent
    in either stays near silent, so a blend adds no floor."""
    return np.exp((1.0 - share) * np.log(a + 1e-12) + share * np.log(b + 1e-12))


def toward_sound(log_magnitude: np.ndarray, sound: np.ndarray, share: float) -> np.ndarray:
    """log1p frames moved ``share`` of the way to the palette's frames, geometrically."""
    here = np.expm1(np.asarray(log_magnitude, np.float64))
    return np.log1p(geometric_blend(here, np.asarray(sound, np.float64), share)).astype(np.float32)
