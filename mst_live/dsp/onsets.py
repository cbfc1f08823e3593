"""Where each frame sits in its note: frames since the last onset, from the past alone.

An instrument is as much how its notes unfold as what their spectra are: a plucked string is
bright at the pluck and dull a second later, a bowed one the same all through. The style's own
frames carry their age in their note (`palette.PaletteSampler`), and a frame played is matched
to style frames of the same age as well as the same pitches, so that a sustained input played
into a plucked style takes the string's decay and a plucked one into a bowed style its sustain.

The flux is taken over the semitones, not the STFT bins, each on a log scale from ``RANGE_DB``
under the loudest semitone of late: a bowed or blown note that changes without a new attack
still lights a new semitone, while the leakage and noise far under the notes, which vibrato
stirs in every bin, count for nothing. Over the bins, from a fixed floor, a violin's slurred
notes went unseen and its vibrato read as notes (BENCHMARKS.md, 'quality': the known answer at
the top of the knob). The running mean starts from what has been heard, not from zero, so the
first second of a stream is not one onset after another.
"""

from __future__ import annotations

import numpy as np
import torch

from ..settings import Settings
from .semitones import semitone_amplitudes

HELD_S = 1.12  # a note older than this is "held": its age stops counting
RISE = 2.5  # an onset: the frame's spectral flux this many times its running mean
LEAST_FLUX = 2.0  # and above this much: two semitones rising 9 dB (vibrato's wobble and silence are no onsets)
GAP_S = 0.09  # between two onsets at least
MEAN_S = 1.15  # the running mean's time constant
RANGE_DB = 40.0  # semitones this far under the loudest of late are silence to the clock
RECOVER_DB_S = 1.0  # how fast "the loudest of late" forgets a loud passage
FLOOR = 0.01  # and never under this magnitude (about -94 dB under a full-scale sine)
ATTACK_S = 0.1  # a note's first frames, whose fall from its first peak is no release
RELEASE_DB, RELEASE_S = 12.0, 0.1  # a fall this steep after the attack: the note was let go
LET_GO_DB = -200.0  # the level in its note of a frame after its note was let go


def max_age(frame_rate: float) -> int:
    """The age that means "held", in frames at ``frame_rate`` frames a second."""
    return min(255, max(1, round(HELD_S * frame_rate)))  # a preset keeps ages in one byte


class OnsetClock:
    """Counts frames since the last onset in a stream of magnitude frames (positive flux of the
    log-magnitude semitones against its running mean), up to `max_age`."""

    def __init__(self, settings: Settings) -> None:
        frame_rate = settings.frame_rate
        self.settings = settings
        self.max_age = max_age(frame_rate)
        self._gap = max(1, round(GAP_S * frame_rate))
        self._memory = float(np.exp(-1.0 / (MEAN_S * frame_rate)))
        self._recover = 10 ** (-RECOVER_DB_S / 20 / frame_rate)
        self._range = 10 ** (-RANGE_DB / 20)
        self.reset()

    def reset(self) -> None:
        self._last: np.ndarray | None = None
        # the flux's running sum and its weight (their ratio: the running mean), the loudest
        # semitone of late, age, frames since an onset
        self._state = (0.0, 0.0, 0.0, self.max_age, self._gap)

    def __call__(self, magnitude: np.ndarray, *, commit: int | None = None,
                 amplitudes: torch.Tensor | None = None) -> np.ndarray:
        """Ages (n,) of frames (bins, n). The clock moves on through the first ``commit`` frames
        only (all by default): the rest come again with the next call, as a block's overlap does.
        ``amplitudes``: the frames' `semitone_amplitudes`, where the caller has them already."""
        if amplitudes is None:
            amplitudes = semitone_amplitudes(torch.from_numpy(np.asarray(magnitude, np.float32)) ** 2, self.settings)
        amp = amplitudes.numpy()
        n = amp.shape[1]
        commit = n if commit is None else commit
        ages = np.empty(n, np.int64)
        total, weight, loudest, age, since = self._state
        last = self._last
        for t in range(n):
            loudest = max(loudest * self._recover, float(amp[:, t].max()))
            log = np.log1p(amp[:, t] / max(loudest * self._range, FLOOR))
            flux = float(np.maximum(log - (0.0 if last is None else last), 0.0).sum())  # silence before the stream
            mean = total / weight if weight else 0.0
            onset = flux > max(RISE * mean, LEAST_FLUX) and since >= self._gap
            age = 0 if onset else min(age + 1, self.max_age)
            since = 0 if onset else since + 1
            total = self._memory * total + (1.0 - self._memory) * flux
            weight = self._memory * weight + (1.0 - self._memory)
            ages[t], last = age, log
            if t + 1 == commit:
                self._state, self._last = (total, weight, loudest, age, since), log
        return ages


class NoteLevel:
    """Each frame's level in its note: dB under the loudest frame since the note's onset (0 or
    less), with the ages of `OnsetClock`. A plucked string falls away from its attack, a bowed
    one holds; the style's own frames keep this beside their age (`palette.PaletteSampler`), so
    that a held input note into a plucked style decays as the string does, and a struck one into
    a bowed style holds. With ``releases``, a note that falls ``RELEASE_DB`` within
    ``RELEASE_S`` after its attack has been let go (a damper, a bow lifted; a decay is slower), and
    its frames read ``LET_GO_DB`` until the next onset: nothing then holds the note up."""

    def __init__(self, settings: Settings, *, releases: bool = False) -> None:
        self._attack = max(1, round(ATTACK_S * settings.frame_rate))
        self._span = max(1, round(RELEASE_S * settings.frame_rate))
        self.releases = releases
        self.reset()

    def reset(self) -> None:
        self._loudest, self._let_go = 0.0, False
        self._recent = np.zeros(self._span + 1)  # the last frames' levels in their note, newest last

    def __call__(self, power: np.ndarray, ages: np.ndarray, *, commit: int | None = None) -> np.ndarray:
        """Levels (n,) of frames whose total powers are ``power`` (n,) and ages ``ages`` (n,). Moves
        on through the first ``commit`` frames only, as `OnsetClock` does."""
        n = len(power)
        commit = n if commit is None else commit
        out = np.empty(n, np.float32)
        loudest, let_go, recent = self._loudest, self._let_go, self._recent.copy()
        for t in range(n):
            p = max(float(power[t]), 1e-20)
            if ages[t] == 0:
                loudest, let_go = p, False
                recent[:] = 0.0
            loudest = max(loudest, p)
            level = 10.0 * np.log10(p / loudest)
            recent = np.roll(recent, -1)
            recent[-1] = level
            if self.releases and ages[t] > self._attack and recent[0] - level > RELEASE_DB:
                let_go = True
            out[t] = LET_GO_DB if let_go else level
            if t + 1 == commit:
                self._loudest, self._let_go, self._recent = loudest, let_go, recent.copy()
        return out
