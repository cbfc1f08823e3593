"""The palette of the style's own sound: what it keeps, what it matches, how it is blended."""

import itertools

import numpy as np
import pytest
import torch

from mst_live import PresetError, Settings, build_preset, load_preset
from mst_live.dsp.envelope import envelope_ceiling
from mst_live.dsp.onsets import NoteLevel, OnsetClock, max_age
from mst_live.dsp.stft import stft
from mst_live.losses import chroma_filterbank
from mst_live.palette import (
    CONTOUR_DB,
    ENVELOPE_QUANTILE,
    FULL_AT,
    SOUNDING_DB,
    STEP_DB,
    TOP_SHARE,
    Palette,
    PaletteSampler,
    contour_gain_db,
    quantise,
    sound_share,
    toward_sound,
)
from mst_live.preset import FORMAT_VERSION

from .conftest import SR, harmonic_melody, melody


def _mags(y, s):
    return np.abs(stft(y, n_fft=s.n_fft, hop_length=s.hop_length))


def _palette(y, s, **kw):
    sampler = PaletteSampler(s, **kw)
    m = _mags(y, s)
    for i in range(0, m.shape[1], 37):  # as a build reads it: chunk by chunk
        sampler.add(m[:, i : i + 37])
    return sampler


def test_the_share_of_the_style_s_sound_rises_from_weight_1_to_the_top():
    assert sound_share(0.0) == sound_share(1.0) == 0.0
    shares = [sound_share(w) for w in (1.5, 2.0, 5.0, FULL_AT)]
    assert all(0 < a < b for a, b in itertools.pairwise(shares)) and shares[-1] == TOP_SHARE < 1.0
    assert sound_share(100.0) == TOP_SHARE


def test_the_sampler_keeps_loud_frames_a_uniform_seeded_few(small):
    y = harmonic_melody(6.0, seed=2)
    y[: SR] = 0.0  # a silent second: none of it is kept
    a, b = _palette(y, small, size=64), _palette(y, small, size=64)
    assert a.seen > 64 and a.palette().shape == (small.n_bins, 64)
    assert np.array_equal(a.palette(), b.palette())
    assert a.seen <= _mags(y, small).shape[1] - SR // small.hop_length + 2
    few = _palette(y[: 2 * SR], small, size=10_000)
    assert few.palette().shape[1] == few.seen < 10_000


def test_quantising_keeps_a_frame_within_a_quarter_db_and_nothing_below_127_db():
    m = np.array([1.0, 0.5, 1e-3, 1e-9, 0.0])
    q = quantise(m)
    assert q[0] == 0 and abs(q[1] * 0.5 - 6.02) <= 0.25 and abs(q[2] * 0.5 - 60.0) <= 0.25
    assert q[3] == q[4] == 255


def test_it_plays_the_notes_played_with_the_style_s_partials(small):
    """The known answer: sine notes in, the palette of a bright eight-partial instrument playing
    other notes; out must come the same notes, at the same power per frame, with the bright
    instrument's partials (the truth: the same notes on that instrument)."""
    pal = Palette(_palette(harmonic_melody(10.0, seed=5), small).palette(), small)
    x, truth = _mags(melody(3.0, seed=1), small), _mags(harmonic_melody(3.0, seed=1), small)
    y = pal.match(x)
    power = (x * x).sum(axis=0)
    loud = power > 1e-3 * power.max()
    np.testing.assert_allclose((y * y).sum(axis=0)[loud], power[loud], rtol=1e-3)
    bank = chroma_filterbank(sample_rate=small.sample_rate, n_fft=small.n_fft)

    def unit(c):
        return c / (np.linalg.norm(c, axis=0, keepdims=True) + 1e-12)

    same_notes = (unit(bank @ x) * unit(bank @ y)).sum(axis=0)[loud]
    assert np.median(same_notes) > 0.9

    def shape_db(m):  # each frame's spectrum, level removed, 60 dB floor
        p = m * m / ((m * m).sum(axis=0, keepdims=True) + 1e-20)
        return 10 * np.log10(np.maximum(p, 1e-6))[:, loud]

    before = np.sqrt(np.mean((shape_db(x) - shape_db(truth)) ** 2))
    after = np.sqrt(np.mean((shape_db(y) - shape_db(truth)) ** 2))
    assert after < 0.6 * before


def test_a_note_the_style_never_played_comes_out_at_the_pitch_played():
    """The palette holds one bright note (220 Hz, eight partials); a sine a whole tone higher
    comes out with those partials moved up to its own harmonics, where matching by pitch alone
    left them on the palette's note. The full-size analysis: its bins tell semitones apart."""
    s = Settings()
    t = np.arange(3 * SR) / SR
    note = sum(np.sin(2 * np.pi * h * 220.0 * t) / h for h in range(1, 9)).astype(np.float32)
    frames = _palette(0.2 * note, s).palette()
    played = 220.0 * 2 ** (2 / 12)
    x = _mags((0.3 * np.sin(2 * np.pi * played * t)).astype(np.float32), s)[:, 8:-8]
    df = s.sample_rate / s.n_fft

    def partials_at(y, f0):  # energy in the bins of partials 3-8 of f0 (where a whole tone is a bin or more apart)
        return sum(float((y[round(h * f0 / df)] ** 2).sum()) for h in range(3, 9))

    moved, stayed = Palette(frames, s).match(x), Palette(frames, s, transpose=0).match(x)
    assert partials_at(moved, played) > 10 * partials_at(moved, 220.0)
    assert partials_at(stayed, 220.0) > 10 * partials_at(stayed, played)


def test_a_frame_takes_the_style_s_sound_at_its_age_in_the_note(small):
    """A style whose notes start bright and turn dull (each partial decays faster than the one
    below): a bright held tone just struck takes the bright frames, long held the dull ones; a
    palette without ages cannot tell them apart."""
    rng = np.random.default_rng(7)
    t = np.arange(SR) / SR
    style = np.concatenate([
        sum(np.sin(2 * np.pi * k * f * t) * np.exp(-3 * k * t) / k for k in range(1, 9))
        for f in 220.0 * 2 ** (rng.integers(0, 12, 12) / 12)]).astype(np.float32) * 0.2
    sampler = _palette(style, small)
    aged, ageless = Palette(sampler.palette(), small, ages=sampler.palette_ages()), Palette(sampler.palette(), small)
    x = _mags((0.1 * sum(np.sin(2 * np.pi * k * 220.0 * t) / k for k in range(1, 9))).astype(np.float32), small)[:, 20:40]
    n, df = x.shape[1], small.sample_rate / small.n_fft

    def bright(m):  # share of the power at and above the third partial
        return float((m[round(2.5 * 220.0 / df):] ** 2).sum() / (m**2).sum())

    held = max_age(small.frame_rate)
    young, old = (aged.match(x, ages=np.full(n, a)) for a in (0, held))
    assert bright(young) > 3 * bright(old)
    np.testing.assert_array_equal(ageless.match(x, ages=np.zeros(n)), ageless.match(x, ages=np.full(n, held)))


def _tones(freqs, envelope, *, seconds=1.0):
    """Notes of three partials, one after another, each shaped by ``envelope(t)``."""
    t = np.arange(int(seconds * SR)) / SR
    return np.concatenate([0.2 * envelope(t) * sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3))
                           for f in freqs]).astype(np.float32)


def _fade(t):
    """A note's 5 ms fade in and out: no click to read as an onset."""
    return np.clip(t / 0.005, 0, 1) * np.clip((t[-1] - t) / 0.005, 0, 1)


def _played(y, s, palette, *, contour=True):
    """What ``palette`` gives for each frame of ``y``, told (or not) each frame's level in its note."""
    m = _mags(y, s)
    ages = OnsetClock(s)(m)
    levels = NoteLevel(s, releases=True)((m**2).sum(axis=0), ages) if contour else None
    return (palette.match(m, ages=ages, levels=levels) ** 2).sum(axis=0), (m**2).sum(axis=0)


def test_a_held_note_into_a_plucked_style_decays_and_a_struck_one_into_a_held_style_holds(small):
    """The style's level in its notes: a plucked style (26 dB a second) makes a held tone fall away
    from its start, a held style makes a decaying one hold, and a note let go stops all the same."""
    rng = np.random.default_rng(7)
    freqs = 220.0 * 2 ** (rng.integers(0, 12, 12) / 12)
    plucked, held = (_palette(_tones(freqs, lambda t, e=e: _fade(t) * e(t)), small) for e in
                     (lambda t: np.exp(-3 * t), lambda t: np.ones_like(t)))
    plucked, held = (Palette(p.palette(), small, ages=p.palette_ages(), levels=p.palette_levels())
                     for p in (plucked, held))
    rate = small.frame_rate
    at, late = round(0.25 * rate), round(1.05 * rate)  # the note's onset (0.25 s in) and 0.8 s into it
    silence = np.zeros(SR // 4, np.float32)

    def fall(power):  # dB from just after the attack to 0.8 s into the note
        return 10 * np.log10(power[late] / power[at + 3])

    organ = np.concatenate([silence, _tones([330.0], _fade, seconds=1.2)])
    out, inp = _played(organ, small, plucked)
    assert fall(out) < -12.0 and abs(fall(inp)) < 1.0
    flat, _ = _played(organ, small, plucked, contour=False)
    np.testing.assert_allclose(flat[at + 4 : late], inp[at + 4 : late], rtol=1e-3)  # without: the level played

    piano = np.concatenate([silence, _tones([330.0], lambda t: _fade(t) * np.exp(-3 * t), seconds=1.2)])
    out, inp = _played(piano, small, held)
    assert fall(inp) < -15.0 and fall(out) > -6.0

    damped = np.concatenate([silence, _tones([330.0], lambda t: _fade(t) * np.clip((0.5 - t) / 0.01, 0, 1)
                                               * np.exp(-1 * t), seconds=1.2)])
    out, inp = _played(damped, small, held)
    assert 10 * np.log10(max(out[at + round(0.6 * rate)], 1e-30) / out[at + 10]) < -40.0  # let go: the held style stops with it


def test_a_held_note_keeps_the_style_s_typical_level_where_its_matches_are_release_tails(small, monkeypatch):
    """A held style whose notes at one pitch are short with a long quiet tail: past their end, a note
    held at that pitch matches the tails (the pitch fits, the other notes do not), yet holds at the
    level the style's notes typically have at that age, not the tails' 25 dB down."""
    tail = lambda t: _fade(t) * np.where(t < 0.3, 1.0, 10 ** (-25 / 20))  # noqa: E731
    held = _tones(220.0 * 2 ** (np.array([0, 4, 8, 12, 16, 20, 28, 32]) / 12), _fade, seconds=1.2)
    sampler = _palette(np.concatenate([held, _tones([880.0, 880.0], tail, seconds=1.2)]), small)
    palette = Palette(sampler.palette(), small, ages=sampler.palette_ages(), levels=sampler.palette_levels())
    rate = small.frame_rate
    at, late = round(0.25 * rate), round(1.05 * rate)
    note = np.concatenate([np.zeros(SR // 4, np.float32), _tones([880.0], _fade, seconds=1.2)])
    out, inp = _played(note, small, palette)
    assert abs(10 * np.log10(out[late] / out[at + 3])) < 4.0 and abs(10 * np.log10(inp[late] / inp[at + 3])) < 1.0
    monkeypatch.setattr(palette, "typical_db", None)
    out, _ = _played(note, small, palette)
    assert 10 * np.log10(out[late] / out[at + 3]) < -15.0  # what the matches alone give


def test_the_contour_moves_a_frame_at_most_so_far_and_raises_only_a_note_that_sounds():
    played = torch.tensor([0.0, 0.0, -20.0, -20.0, -SOUNDING_DB - 20.0, -200.0])
    style = torch.tensor([-50.0, -10.0, -5.0, 0.0, 0.0, 0.0])
    gain = contour_gain_db(played, style)
    np.testing.assert_allclose(gain.numpy(), [-CONTOUR_DB, -10.0, 15.0, 20.0, 0.0, 0.0])


def test_silence_matches_to_silence(small):
    pal = Palette(_palette(harmonic_melody(4.0, seed=5), small).palette(), small)
    assert not np.any(pal.match(np.zeros((small.n_bins, 5), np.float32)))


def test_a_frame_shaped_like_most_of_the_style_s_sits_at_its_ceiling(small):
    """Bin b sits d_b dB under its frame's peak in most of the style's frames and holds nothing in
    the rest: a frame of that shape, at any level, is exactly at its ceiling; under a lone peak the
    ceiling is d_b down; a bin already above it is its own ceiling."""
    n, deep = 100, round((1 - ENVELOPE_QUANTILE) * 100) - 5  # fewer frames empty than the quantile spares
    depth = np.linspace(0.0, 60.0, small.n_bins)
    frames = np.repeat(np.round(depth / STEP_DB).astype(np.uint8)[:, None], n, axis=1)
    frames[1:, :deep] = 255  # nothing there at all in these frames
    pal = Palette(frames, small)
    np.testing.assert_allclose(pal.depth_db, frames[:, -1] * STEP_DB, atol=1e-4)
    shape = 10 ** (-pal.depth_db.astype(np.float64) / 20)
    for level in (0.01, 3.0):
        np.testing.assert_allclose(envelope_ceiling((level * shape)[:, None], pal.depth_db)[:, 0], level * shape,
                                   rtol=1e-5)
    lone = np.zeros((small.n_bins, 1), np.float32)
    lone[0], lone[-1] = 2.0, 1.0  # a peak, and a bin far above the style's envelope
    ceiling = envelope_ceiling(lone, pal.depth_db)[:, 0]
    np.testing.assert_allclose(ceiling[:-1], 2.0 * shape[:-1], rtol=1e-5)
    assert ceiling[-1] == 1.0
    frames[1:, : deep + 20] = 255  # now most frames have nothing there: no ceiling worth the name
    assert np.all(Palette(frames, small).depth_db[1:] >= 127.0)


def test_the_blend_is_geometric_and_adds_no_floor():
    rng = np.random.default_rng(0)
    content = np.log1p(rng.random((6, 4)).astype(np.float32))
    sound = rng.random((6, 4)).astype(np.float32)
    np.testing.assert_allclose(toward_sound(content, sound, 0.0), content, atol=1e-6)
    np.testing.assert_allclose(toward_sound(content, sound, 1.0), np.log1p(sound), atol=1e-6)
    silent = content.copy()
    silent[2] = 0.0  # a bin the input leaves silent stays (near) silent halfway
    assert np.all(toward_sound(silent, sound, 0.5)[2] < 1e-5)


def test_a_built_preset_carries_its_palette_and_an_older_one_loads_without(audio_dir, small, tmp_path):
    p = build_preset([audio_dir / "style.flac"], settings=small)
    assert p.palette is not None and p.palette.dtype == np.uint8 and p.palette.shape[0] == small.n_bins
    ages = p.palette_age
    assert ages is not None and ages.shape == (p.palette.shape[1],) and ages.max() <= max_age(small.frame_rate)
    levels = p.palette_level
    assert levels is not None and levels.shape == ages.shape and levels.dtype == np.uint8 and levels.min() == 0
    q = load_preset(p.save(tmp_path / "with.npz"))
    assert np.array_equal(q.palette, p.palette) and np.array_equal(q.palette_age, p.palette_age)
    assert np.array_equal(q.palette_level, levels)
    assert "frames of the style's own sound, each with its age" in q.describe()
    with np.load(tmp_path / "with.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in ("palette_age", "palette_level")}
    arrays["format_version"] = np.int64(3)  # a palette without ages: matched on pitch alone
    np.savez(tmp_path / "v3.npz", **arrays)
    v3 = load_preset(tmp_path / "v3.npz")
    assert np.array_equal(v3.palette, p.palette) and v3.palette_age is None and "pitch alone" in v3.describe()
    assert "format        version 3," in v3.describe() and f"format        version {FORMAT_VERSION}," in q.describe()
    np.savez(tmp_path / "badage.npz", **arrays, palette_age=p.palette_age[:-1])
    with pytest.raises(PresetError, match=r"badage\.npz: palette_age has shape"):
        load_preset(tmp_path / "badage.npz")
    np.savez(tmp_path / "badlevel.npz", **arrays, palette_age=p.palette_age, palette_level=levels[:-1])
    with pytest.raises(PresetError, match=r"badlevel\.npz: palette_level has shape"):
        load_preset(tmp_path / "badlevel.npz")
    arrays["format_version"] = np.int64(6)  # ages, no levels: the frames take the level played
    np.savez(tmp_path / "v6.npz", **arrays, palette_age=p.palette_age)
    v6 = load_preset(tmp_path / "v6.npz")
    assert v6.palette_level is None and np.array_equal(v6.palette_age, p.palette_age)
    arrays["format_version"] = np.int64(3)
    np.savez(tmp_path / "lone.npz", **{k: v for k, v in arrays.items() if k != "palette"}, palette_age=p.palette_age)
    with pytest.raises(PresetError, match=r"lone\.npz: palette_age without a palette"):
        load_preset(tmp_path / "lone.npz")
    del arrays["palette"]
    arrays["format_version"] = np.int64(2)
    np.savez(tmp_path / "older.npz", **arrays)
    old = load_preset(tmp_path / "older.npz")
    assert old.palette is None and "reshapes only" in old.describe()
    arrays["palette"] = np.zeros((small.n_bins + 1, 3), np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(PresetError, match=r"bad\.npz: palette has shape"):
        load_preset(tmp_path / "bad.npz")
    arrays["palette"] = np.zeros((small.n_bins, 3), np.float32)
    np.savez(tmp_path / "badtype.npz", **arrays)
    with pytest.raises(PresetError, match=r"badtype\.npz: 'palette' has dtype"):
        load_preset(tmp_path / "badtype.npz")


# ---------------------------------------------------------------------------- in the engine
def _engine(preset, **params):
    from mst_live.engine import StyleEngine
    from mst_live.params import LiveParams

    morph = params.pop("morph_preset", None)
    return StyleEngine(preset, block_frames=8, device="cpu", precision="float32", morph=morph,
                       params=LiveParams(**params))


def _render(eng, x):
    out = [eng.process(x[i : i + 1000]) for i in range(0, x.size, 1000)]
    return np.concatenate([*out, eng.flush()])[eng.latency :][: x.size]


@pytest.fixture(scope="module")
def bright(small, tmp_path_factory):
    """A preset of a bright eight-partial instrument playing other notes than the tests' input."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("bright")
    sf.write(d / "bright.wav", harmonic_melody(12.0, seed=5), SR)
    return build_preset([d / "bright.wav"], settings=small)


def test_up_to_weight_one_the_style_s_own_frames_are_not_played(bright, monkeypatch):
    """Up to the default the palette only bounds how far a bin may rise (its envelope); its
    frames are played from above weight 1."""
    calls = []
    real = Palette.match
    monkeypatch.setattr(Palette, "match", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    x = harmonic_melody(2.0, seed=3)
    for w in (0.5, 1.0):
        _render(_engine(bright, style_weight=w, steps=3), x)
    assert not calls
    _render(_engine(bright, style_weight=2.0, steps=3), x)
    assert calls


def test_the_engine_tells_the_palette_each_frame_s_age_in_its_note(bright, small, monkeypatch):
    """A note struck and held: the frames the engine matches are told they are just struck, then
    older frame by frame, to held; the overlap frames matched twice are the same age both times."""
    seen = {}
    real = Palette.match

    def spy(self, magnitude, *, ages=None, **kw):
        seen.setdefault("ages", []).append(np.asarray(ages).copy())
        return real(self, magnitude, ages=ages, **kw)

    monkeypatch.setattr(Palette, "match", spy)
    t = np.arange(3 * SR) / SR
    x = np.where(t > 0.5, 0.3 * np.sin(2 * np.pi * 330.0 * t), 0.0).astype(np.float32)
    eng = _engine(bright, style_weight=10.0)
    _render(eng, x)
    blocks = seen["ages"]
    commit, overlap = eng.block_frames, eng.overlap_frames
    ages = np.concatenate([a[:commit] for a in blocks])
    assert all(np.array_equal(a[commit:], b[: a.size - commit]) for a, b in itertools.pairwise(blocks))
    struck = np.flatnonzero(ages[: round(2.9 * small.frame_rate)] == 0)  # the cut at the end clicks
    assert overlap > 0 and struck.size == 1 and abs(struck[0] - 0.5 * small.frame_rate) <= 3
    held = max_age(small.frame_rate)
    assert np.array_equal(ages[struck[0]: struck[0] + held + 1], np.arange(held + 1))


def test_at_the_top_the_notes_played_come_out_in_the_style_s_sound(bright, small):
    """Sine notes in: at the top of the knob, the same notes on the preset's instrument (the
    truth) is much nearer than at the default, the notes are kept, and nothing clips."""
    x, truth = melody(3.0, seed=1), harmonic_melody(3.0, seed=1)
    bank = chroma_filterbank(sample_rate=small.sample_rate, n_fft=small.n_fft)
    t_mag = _mags(truth, small)
    loud = (t_mag**2).sum(axis=0) > 1e-3 * (t_mag**2).sum(axis=0).max()

    def shape_db(m):
        p = m * m / ((m * m).sum(axis=0, keepdims=True) + 1e-20)
        return 10 * np.log10(np.maximum(p, 1e-6))[:, loud]

    def to_truth(y):
        return float(np.sqrt(np.mean((shape_db(_mags(y, small)) - shape_db(t_mag)) ** 2)))

    def notes_kept(y):
        a, b = bank @ _mags(x, small), bank @ _mags(y, small)
        cos = (a * b).sum(axis=0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + 1e-12)
        return float(np.median(cos[loud]))

    default = _render(_engine(bright, style_weight=1.0, steps=4), x)
    eng = _engine(bright, style_weight=10.0, steps=4)
    top = _render(eng, x)
    assert to_truth(top) < 0.4 * to_truth(default) and to_truth(top) < 0.4 * to_truth(x)  # measured 3.8 dB against 11.7
    assert notes_kept(top) > 0.85
    assert np.all(np.isfinite(top)) and np.max(np.abs(top)) <= 0.98 + 1e-6
    # the optimiser reshapes what is left of the input's own sound in every block
    assert eng.stats.evaluations == 4 * eng.stats.blocks and eng.stats.dry_blocks == 0 and eng.stats.underruns == 0


def test_a_morph_at_the_top_morphs_the_instrument(bright, audio_dir, small, tmp_path):
    """Between the bright instrument and a sine one, the morph knob at the top of the style knob
    moves the sound from one to the other: the partials above the fundamental fade out."""
    import soundfile as sf

    sf.write(tmp_path / "sines.wav", melody(12.0, seed=6), SR)
    sines = build_preset([tmp_path / "sines.wav"], settings=small)
    x = harmonic_melody(3.0, seed=1)

    def centroid(y):
        m = _mags(y, small) ** 2
        return float((np.arange(m.shape[0]) @ m).sum() / m.sum())

    c = [centroid(_render(_engine(bright, style_weight=10.0, morph=m, morph_preset=sines), x)) for m in (0.0, 0.5, 1.0)]
    assert c[0] > c[1] > c[2] and c[2] < 0.7 * c[0]


def test_a_preset_without_a_palette_keeps_its_optimiser_at_the_top(bright):
    import dataclasses

    bare = dataclasses.replace(bright, palette=None)
    eng = _engine(bare, style_weight=10.0, steps=3)
    assert eng.styles.without_palette() == [bare]
    _render(eng, harmonic_melody(1.0, seed=3))
    assert eng.stats.evaluations > 0


def _clicks(y, *, sr=SR):
    """2 ms windows whose high-passed energy is 30x the median of the 200 ms around them."""
    d = np.diff(y.astype(np.float64))
    w = int(0.002 * sr)
    e = np.add.reduceat(d * d, np.arange(0, d.size - w, w))
    k = 50
    local = np.array([np.median(e[max(0, i - k) : i + k + 1]) for i in range(e.size)])
    return int((e > 30 * (local + 1e-9 + 1e-4 * e.max())).sum())


def test_turning_the_knob_through_the_strong_end_does_not_click(bright):
    """The knob swept live from the default to the top and back, each turn between two calls:
    the output clicks no more than a run held at either end does, and never jumps in level."""
    x = harmonic_melody(4.0, seed=3)
    ramp = [1.0, 1.5, 2.5, 4.0, 6.0, 10.0, 10.0, 6.0, 4.0, 2.5, 1.5, 1.0]

    def render(weights):
        eng = _engine(bright, style_weight=weights[0], steps=3)
        n = x.size // len(weights) + 1
        outs = []
        for i, w in enumerate(weights):
            eng.params.set("style_weight", w)
            outs.append(eng.process(x[i * n : (i + 1) * n]))
        return np.concatenate([*outs, eng.flush()])[eng.latency :][: x.size]

    swept = render(ramp)
    held = [render([w]) for w in (1.0, 10.0)]
    assert _clicks(swept) <= max(_clicks(h) for h in held) + 1
    assert np.all(np.isfinite(swept)) and np.max(np.abs(swept)) <= 0.98 + 1e-6

    def jumps(y, frame=1024):  # dB between neighbouring 46 ms frames
        level = np.add.reduceat(y.astype(np.float64) ** 2, np.arange(0, y.size, frame))[:-1] / frame
        return np.abs(np.diff(10 * np.log10(level + 1e-12)))

    assert jumps(swept).max() < jumps(x).max() + 6.0  # no level step beyond the playing's own
