"""The onset clock: each frame's age in its note, from the past alone."""

import itertools

import numpy as np
import pytest

from mst_live import Settings
from mst_live.dsp.onsets import LET_GO_DB, NoteLevel, OnsetClock, max_age
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


def _levels(y, *, releases=False, chunks=None):
    """Each frame's level in its note, fed whole or as the engine feeds it (``chunks`` frames
    committed a call, two more that come again)."""
    mag = _mags(y)
    power, ages = (mag**2).sum(axis=0), OnsetClock(S)(mag)
    note = NoteLevel(S, releases=releases)
    if chunks is None:
        return note(power, ages), ages
    got, t = [], 0
    while t < power.size:
        commit = min(chunks, power.size - t)
        got.append(note(power[t : t + chunks + 2], ages[t : t + chunks + 2], commit=commit)[:commit])
        t += commit
    return np.concatenate(got), ages


def test_a_note_s_level_falls_from_its_loudest_as_it_decays_and_the_next_note_starts_over():
    """Notes decaying at 17.4 dB a second (amplitude e^(-2t)): a second into the first the level
    is 17 dB under its loudest, and the next note starts again at 0 dB."""
    y = _notes([0.5, 2.0], 3.2, decay=2.0)
    levels, ages = _levels(y)
    onsets = np.flatnonzero(ages[: round(3.0 * S.frame_rate)] == 0)  # the cut at the end clicks
    assert onsets.size == 2 and np.all(levels <= 0.0)
    a, b = onsets
    assert levels[a] > -1.0 and levels[b] > -1.0
    late = levels[a + round(1.0 * S.frame_rate)]
    assert -20.0 < late < -14.5, late
    assert np.all(np.diff(levels[a + 4 : b - 2]) <= 0.2)  # it only falls while the note decays


def test_a_note_let_go_reads_let_go_until_the_next_note_and_a_decay_never_does():
    t = np.arange(int(3.0 * SR)) / SR
    tone = 0.3 * sum(np.sin(2 * np.pi * k * 220.0 * t) / k for k in (1, 2, 3))
    cut = np.clip((1.5 - t) / 0.03, 0.0, 1.0) * np.exp(-0.5 * t)  # a damper 1 s into the note
    y = np.where(t >= 0.5, tone * cut, 0.0).astype(np.float32)
    y[int(2.2 * SR) :] = 0.3 * np.sin(2 * np.pi * 330.0 * t[: y.size - int(2.2 * SR)])
    levels, ages = _levels(y, releases=True)
    onsets = np.flatnonzero(ages[: round(2.9 * S.frame_rate)] == 0)
    cut_frame, next_note = round(1.5 * S.frame_rate), onsets[-1]
    assert abs(next_note - 2.2 * S.frame_rate) <= 2
    assert np.all(levels[onsets[0] : cut_frame - 3] > -10.0)  # the slow decay before the damper: still the note
    assert np.all(levels[cut_frame + 4 : next_note] == LET_GO_DB)
    assert np.all(levels[next_note : round(2.9 * S.frame_rate)] > -10.0)  # the next note is a note again
    without, _ = _levels(y)
    assert not np.any(without == LET_GO_DB) and np.all(without[cut_frame + 4 : next_note] < -30.0)  # the level as it is
    decaying, _ = _levels(_notes([0.5], 3.0, decay=3.0), releases=True)
    assert np.all(decaying > LET_GO_DB)  # 26 dB a second is a decay, not a release


def test_the_note_level_moves_on_only_through_what_is_committed():
    y = _notes([0.3, 1.1, 1.4, 2.5], 3.5, decay=1.5)
    whole, _ = _levels(y, releases=True)
    chunked, _ = _levels(y, releases=True, chunks=7)
    np.testing.assert_array_equal(chunked, whole)
