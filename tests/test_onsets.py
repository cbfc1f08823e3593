"""The onset clock: each frame's age in its note, from the past alone."""

import itertools

import numpy as np
import pytest

from mst_live import Settings
from mst_live.dsp.onsets import OnsetClock, max_age
from mst_live.dsp.stft import stft

from .conftest import SR, melody

S = Settings()


def _mags(y, settings=S):
    return np.abs(stft(y, n_fft=settings.n_fft, hop_length=settings.hop_length))


def _notes(starts_s, seconds, *, amp=0.3, decay=0.0):
    """Harmonic notes (three partials) starting at ``starts_s``, each held to the next."""
    y = np.zeros(int(seconds * SR), np.float32)
    bounds = [*starts_s, seconds]
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        t = np.arange(int((b - a) * SR)) / SR
        f = 220.0 * 2 ** ((3 * i % 12) / 12)
        tone = sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3)) * np.exp(-decay * t)
        y[int(a * SR): int(a * SR) + t.size] = amp * tone
    return y


def test_each_note_restarts_the_clock_and_a_held_one_counts_up_to_held():
    starts = [0.5, 2.5, 3.0]
    ages = OnsetClock(S)(_mags(_notes(starts, 4.0)))[: round(3.9 * S.frame_rate)]  # the cut at the end clicks
    onsets = np.flatnonzero(ages == 0)
    expected = [round(s * S.frame_rate) for s in starts]
    assert len(onsets) == len(starts) and np.all(np.abs(onsets - expected) <= 2)
    held = ages[onsets[0]: onsets[1]]
    top = max_age(S.frame_rate)
    assert top == round(1.12 * S.frame_rate) and held.max() == top
    rising = held[: top + 1]
    assert np.array_equal(rising, np.arange(top + 1))  # one a frame, no onset inside a held note
    assert np.all(ages[: onsets[0]] == top)  # silence before the first note: nothing struck


def _slurred(pitches, note_s, *, vibrato_cents=20.0, rate_hz=5.5):
    """A bowed line: one unbroken tone whose pitch steps from note to note over 30 ms, with
    vibrato throughout and a level that never dips: no attack, faded in and out."""
    n = int(len(pitches) * note_s * SR)
    t = np.arange(n) / SR
    step = np.repeat(np.asarray(pitches, float), int(note_s * SR))[:n]
    glide = np.convolve(np.pad(step, (660, 660), mode="edge"), np.ones(1323) / 1323, mode="same")[660:660 + n]
    midi = glide + vibrato_cents / 100 * np.sin(2 * np.pi * rate_hz * t)
    phase = 2 * np.pi * np.cumsum(440.0 * 2 ** ((midi - 69) / 12)) / SR
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    return (0.3 * fade * sum(np.sin(k * phase) / k for k in (1, 2, 3, 4))).astype(np.float32)


@pytest.mark.parametrize("settings", [S, Settings(n_fft=512, hop_length=128)], ids=["default", "low"])
def test_a_slurred_note_is_a_new_note_and_vibrato_is_not(settings):
    note_s, pitches = 0.6, [57, 60, 64, 62, 65, 59]
    onsets = np.flatnonzero(OnsetClock(settings)(_mags(_slurred(pitches, note_s), settings)) == 0)
    rate = settings.frame_rate
    changes = np.array([round(i * note_s * rate) for i in range(1, len(pitches))])
    assert all(np.any(np.abs(onsets - c) <= 0.05 * rate) for c in changes), (onsets, changes)
    assert onsets[0] == 0  # the stream starts on a note: silence came before it
    assert onsets.size == changes.size + 1, (onsets, changes)  # vibrato (20 cents at 5.5 Hz) starts no note


def test_the_clock_moves_on_only_through_what_is_committed():
    """Fed as the engine feeds it (blocks of 8 frames with 2 of overlap that come again), the
    ages are those of one pass over the whole stream."""
    mag = _mags(melody(3.0, seed=4))
    whole = OnsetClock(S)(mag)
    clock, got, t = OnsetClock(S), [], 0
    while t < mag.shape[1]:
        block = mag[:, t: t + 10]
        commit = min(8, block.shape[1])
        got.append(clock(block, commit=commit)[:commit])
        t += commit
    assert np.array_equal(np.concatenate(got), whole)
    assert (whole == 0).sum() >= 8  # the plucked melody's notes are found (a note every 0.25 s)


def test_quieter_playing_finds_the_same_notes():
    y = melody(3.0, seed=4)
    loud, quiet = (np.flatnonzero(OnsetClock(S)(_mags(g * y)) == 0) for g in (1.0, 0.1))
    assert loud.size == quiet.size and np.all(np.abs(loud - quiet) <= 1)  # within a frame (23 ms)


def test_the_held_age_is_a_time_whatever_the_analysis():
    low = Settings(n_fft=512, hop_length=128)
    assert abs(max_age(low.frame_rate) / low.frame_rate - max_age(S.frame_rate) / S.frame_rate) < 0.02
