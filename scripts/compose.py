"""Style tracks the project composes itself, so every shipped byte is redistributable.

Each composer returns a mido.MidiFile; `render` plays it through FluidSynth with the FluidR3
General MIDI soundfont (Debian packages fluidsynth and fluid-soundfont-gm). Composition is
seeded, so the MIDI is the same on every run.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import mido

TPB = 480
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
DRUMS = 9
NOTE = {"C": 0, "Db": 1, "D": 2, "Eb": 3, "E": 4, "F": 5, "Gb": 6, "G": 7, "Ab": 8, "A": 9, "Bb": 10, "B": 11}
# chord qualities as intervals: root, 3rd, 5th, 7th, 9th
QUALITY = {"m7": (0, 3, 7, 10, 14), "7": (0, 4, 7, 10, 14), "maj7": (0, 4, 7, 11, 14), "m7b5": (0, 3, 6, 10, 13),
           "7alt": (0, 4, 8, 10, 15), "6": (0, 4, 7, 9, 14)}


class Score:
    """Events in beats per channel, turned into a type-1 MIDI file with tempo changes."""

    def __init__(self) -> None:
        self.events: list[tuple[float, int, mido.Message]] = []
        self.tempos: list[tuple[float, float]] = []
        self.programs: dict[int, int] = {}

    def program(self, channel: int, program: int) -> None:
        self.programs[channel] = program

    def tempo(self, beat: float, bpm: float) -> None:
        self.tempos.append((beat, bpm))

    def note(self, channel: int, beat: float, dur: float, pitch: int, vel: int) -> None:
        pitch = max(0, min(127, int(pitch)))
        vel = max(1, min(127, int(vel)))
        self.events.append((beat, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=vel)))
        self.events.append((beat + max(dur, 0.05), 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))

    def cc(self, channel: int, beat: float, control: int, value: int) -> None:
        self.events.append((beat, 0, mido.Message("control_change", channel=channel, control=control, value=value)))

    def midi(self) -> mido.MidiFile:
        mf = mido.MidiFile(ticks_per_beat=TPB)
        meta = mido.MidiTrack()
        last = 0
        for beat, bpm in sorted(self.tempos):
            t = round(beat * TPB)
            meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=t - last))
            last = t
        mf.tracks.append(meta)
        track = mido.MidiTrack()
        for ch, prog in self.programs.items():
            if ch != DRUMS:
                track.append(mido.Message("program_change", channel=ch, program=prog, time=0))
        last = 0
        for beat, _, msg in sorted(self.events, key=lambda e: (e[0], e[1])):
            t = round(beat * TPB)
            track.append(msg.copy(time=t - last))
            last = t
        mf.tracks.append(track)
        return mf


def render(mid: mido.MidiFile, wav: Path, *, sample_rate: int = 44100, soundfont: Path = SOUNDFONT) -> None:
    if not shutil.which("fluidsynth") or not Path(soundfont).exists():
        raise SystemExit(f"needs Debian package fluidsynth and the soundfont {soundfont}")
    midpath = wav.with_suffix(".mid")
    mid.save(midpath)
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sample_rate), "-F", str(wav),
                    str(soundfont), str(midpath)], check=True, stdout=subprocess.DEVNULL)


def _swing(beat: float, amount: float) -> float:
    """Delay off-beat eighths: a straight 0.5 becomes 0.5 + amount."""
    frac = beat % 1.0
    return beat - frac + (frac + amount if abs(frac - 0.5) < 1e-6 else frac)


def _chord_tones(root: int, quality: str) -> list[int]:
    return [root + i for i in QUALITY[quality]]


def _tune(rng: random.Random, key: int) -> list[tuple[int, str]]:
    """A 16-bar form of ii-V-I's and turnarounds in ``key`` (one chord per bar or two per bar)."""
    forms = [
        [(2, "m7"), (7, "7"), (0, "maj7"), (0, "maj7"), (4, "m7b5"), (9, "7alt"), (2, "m7"), (2, "m7"),
         (2, "m7"), (7, "7"), (4, "m7"), (9, "7"), (2, "m7"), (7, "7"), (0, "6"), (7, "7alt")],
        [(0, "maj7"), (9, "7"), (2, "m7"), (7, "7"), (4, "m7"), (9, "7"), (2, "m7"), (7, "7"),
         (5, "maj7"), (10, "7"), (4, "m7"), (9, "7alt"), (2, "m7"), (7, "7"), (0, "maj7"), (0, "maj7")],
        [(9, "m7"), (2, "7"), (7, "maj7"), (0, "maj7"), (6, "m7b5"), (11, "7alt"), (4, "m7"), (4, "m7"),
         (2, "m7"), (7, "7"), (0, "maj7"), (5, "7"), (4, "m7"), (9, "7alt"), (2, "m7"), (7, "7")],
    ]
    form = rng.choice(forms)
    return [((key + r) % 12, q) for r, q in form]


def jazz_trio(seed: int = 1, choruses: int = 14) -> mido.MidiFile:
    """A swinging piano trio: walking bass, ride-cymbal swing, comping and improvised lines.

    Several tunes in different keys and tempos, heads, piano solos, bass features and trading
    fours with the drums: minutes of varied material, not a loop.
    """
    rng = random.Random(seed)
    sc = Score()
    PIANO, BASS = 0, 1
    sc.program(PIANO, 0)
    sc.program(BASS, 32)
    beat = 0.0
    keys = [NOTE[k] for k in ("F", "Bb", "Eb", "C", "G", "Ab", "D")]
    for chorus in range(choruses):
        if chorus % 3 == 0:
            key = rng.choice(keys)
            form = _tune(rng, key)
            bpm = rng.choice([132, 144, 160, 176, 196, 120])
            sc.tempo(beat, bpm)
        swing = 0.12 + 0.06 * rng.random()
        section = ["head", "piano", "piano", "bass", "trade"][chorus % 5] if chorus % 3 else "head"
        lick_pitch = 72 + key % 12
        for bar, (root, quality) in enumerate(form):
            b0 = beat + 4 * bar
            tones = _chord_tones(root, quality)
            nxt_root = form[(bar + 1) % len(form)][0]
            # walking bass: root, chord tones, chromatic approach to the next root
            low = 36 + root if root < 8 else 24 + root
            line = [low, low + rng.choice([QUALITY[quality][1], QUALITY[quality][2]]),
                    low + rng.choice([QUALITY[quality][2], QUALITY[quality][3], 12])]
            target = 36 + nxt_root if nxt_root < 8 else 24 + nxt_root
            line.append(target + rng.choice([-1, 1]))
            for i, p in enumerate(line):
                vel = 85 + rng.randint(-8, 8) + (10 if i == 0 else 0)
                if section == "bass" and rng.random() < 0.35:
                    sc.note(BASS, b0 + i, 0.45, p + 12, vel)
                    sc.note(BASS, _swing(b0 + i + 0.5, swing), 0.4, p + 12 + rng.choice([2, 3, -1]), vel - 10)
                else:
                    sc.note(BASS, b0 + i, 0.9, p, vel)
            # drums: ride pattern (1, 2, 2&, 3, 4, 4&), hi-hat on 2 and 4, feathered kick, snare comping
            trading = section == "trade" and (bar // 4) % 2 == 1
            for pos in (0, 1, 1.5, 2, 3, 3.5):
                sc.note(DRUMS, _swing(b0 + pos, swing), 0.2, 51 if rng.random() > 0.05 else 53, 70 + rng.randint(-10, 15))
            for pos in (1, 3):
                sc.note(DRUMS, b0 + pos, 0.1, 44, 60)
            for pos in range(4):
                sc.note(DRUMS, b0 + pos, 0.1, 36, 30 + rng.randint(0, 10))
            if rng.random() < (0.9 if trading else 0.35):
                hits = 8 if trading else rng.randint(1, 3)
                for _ in range(hits):
                    pos = rng.choice([0.5, 1.5, 2.5, 3.5, 1, 2, 3])
                    sc.note(DRUMS, _swing(b0 + pos, swing), 0.1, rng.choice([38, 38, 40, 45, 47, 50]), 60 + rng.randint(0, 40))
            if bar % 8 == 7:
                sc.note(DRUMS, b0 + 3.5 + swing, 0.3, 49, 90)
            # piano comping: rootless shell voicings on anticipated off-beats
            voicing = sorted(60 + (t - 60) % 12 for t in tones[1:])
            for _ in range(rng.randint(1, 3)):
                pos = rng.choice([0, 0.5, 1.5, 2, 2.5, 3.5])
                dur = rng.choice([0.3, 0.5, 1.0, 1.5])
                for p in voicing:
                    sc.note(PIANO, _swing(b0 + pos, swing), dur, p - rng.choice([0, 0, 12]) * (p > 67), 55 + rng.randint(0, 20))
            # right hand: head melody (long notes) or improvised swung eighths
            if trading:
                continue
            scale = sorted({(t % 12) for t in tones} | {(root + 2) % 12, (root + 5) % 12})
            if section == "head":
                for pos, dur in rng.choice([[(0, 1.5), (1.5, 2.5)], [(0, 0.5), (0.5, 1), (2, 2)], [(1, 3)]]):
                    p = 72 + rng.choice(scale)
                    sc.note(PIANO, _swing(b0 + pos, swing), dur, p, 85 + rng.randint(-5, 10))
            elif section == "piano":
                pos = rng.choice([0, 0.5, 1])
                while pos < 4:
                    step = rng.choice([-2, -1, -1, 1, 1, 2, 3, -3])
                    lick_pitch = max(62, min(88, lick_pitch + step))
                    while lick_pitch % 12 not in scale:
                        lick_pitch += 1 if step > 0 else -1
                    if rng.random() > 0.12:
                        sc.note(PIANO, _swing(b0 + pos, swing), 0.4, lick_pitch, 70 + rng.randint(0, 30))
                    pos += rng.choice([0.5, 0.5, 0.5, 1.0, 0.25 * 2])
        beat += 4 * len(form)
    # ending: a held tonic chord and a cymbal
    for p in _chord_tones(key, "6"):
        sc.note(PIANO, beat, 4, 60 + (p - 60) % 12, 70)
    sc.note(BASS, beat, 4, 36 + key % 12, 90)
    sc.note(DRUMS, beat, 4, 49, 100)
    return sc.midi()


def strings(seed: int = 2, phrases: int = 24) -> mido.MidiFile:
    """A slow string orchestra: sustained chords, a violin melody, cello line, swells."""
    rng = random.Random(seed)
    sc = Score()
    ENS, VLN, VC = 0, 1, 2
    sc.program(ENS, 48)
    sc.program(VLN, 40)
    sc.program(VC, 42)
    beat = 0.0
    progressions = [[0, 5, 9, 7], [0, 9, 5, 7], [9, 5, 0, 7], [2, 7, 0, 9], [5, 7, 4, 9]]
    for phrase in range(phrases):
        if phrase % 4 == 0:
            key = rng.choice([NOTE[k] for k in ("D", "G", "C", "A", "E", "F")])
            sc.tempo(beat, rng.choice([58, 66, 72, 80]))
        for bar, deg in enumerate(rng.choice(progressions)):
            b0 = beat + 4 * bar
            minor = deg in (9, 2, 4)
            root = (key + deg) % 12
            chord = [root, root + (3 if minor else 4), root + 7]
            for p in chord:
                sc.note(ENS, b0, 4.0, 55 + (p - 55) % 12, 60 + rng.randint(0, 15))
            sc.note(VC, b0, 2.0, 36 + root, 75)
            sc.note(VC, b0 + 2, 2.0, 36 + root + rng.choice([7, 12, 0]), 70)
            for v in range(0, 128, 16):
                sc.cc(ENS, b0 + v / 64, 11, 70 + v // 3 if bar % 2 == 0 else 110 - v // 4)
            pos = 0.0
            while pos < 4:
                dur = rng.choice([1.0, 1.5, 2.0, 0.5])
                p = 72 + rng.choice([chord[0], chord[1], chord[2], root + 2, root + 5]) % 12
                sc.note(VLN, b0 + pos, dur, p, 70 + rng.randint(0, 25))
                pos += dur
        beat += 16
    return sc.midi()


def rock(seed: int = 3, sections: int = 18) -> mido.MidiFile:
    """Driving rock: distorted power chords in eighths, picked bass, backbeat drums, fills."""
    rng = random.Random(seed)
    sc = Score()
    GTR, BASS, LEAD = 0, 1, 2
    sc.program(GTR, 30)
    sc.program(BASS, 33)
    sc.program(LEAD, 29)
    beat = 0.0
    riffs = [[0, 0, 5, 3], [0, 10, 8, 7], [0, 3, 5, 5], [0, 7, 5, 3]]
    for section in range(sections):
        if section % 6 == 0:
            key = rng.choice([NOTE[k] for k in ("E", "A", "D", "G")])
            sc.tempo(beat, rng.choice([120, 132, 140, 150]))
        riff = rng.choice(riffs)
        solo = section % 3 == 2
        for bar in range(8):
            b0 = beat + 4 * bar
            root = 40 + (key + riff[bar % 4]) % 12
            for e in range(8):
                pos = b0 + e / 2
                accent = 100 if e % 2 == 0 else 80
                if not (rng.random() < 0.1 and e in (3, 7)):
                    for iv in (0, 7, 12):
                        sc.note(GTR, pos, 0.45, root + iv, accent + rng.randint(-10, 5))
                sc.note(BASS, pos, 0.45, root - 12, 95)
                sc.note(DRUMS, pos, 0.1, 42, 70 + rng.randint(0, 20))
            for pos in (0, 2.5):
                sc.note(DRUMS, b0 + pos, 0.1, 36, 110)
            for pos in (1, 3):
                sc.note(DRUMS, b0 + pos, 0.1, 38, 115)
            if bar % 4 == 3:
                for k in range(4):
                    sc.note(DRUMS, b0 + 3 + k / 4, 0.1, rng.choice([45, 47, 48, 38]), 100)
            if bar == 0:
                sc.note(DRUMS, b0, 0.5, 49, 110)
            if solo:
                pos = 0.0
                pent = [0, 3, 5, 7, 10]
                while pos < 4:
                    dur = rng.choice([0.25, 0.5, 0.5, 1.0])
                    sc.note(LEAD, b0 + pos, dur, 64 + (key + rng.choice(pent)) % 12 + rng.choice([0, 12]), 100)
                    pos += dur
        beat += 32
    return sc.midi()


def chiptune(seed: int = 4, sections: int = 16) -> mido.MidiFile:
    """8-bit style: square-wave lead, fast arpeggios, saw bass, clipped drum hits."""
    rng = random.Random(seed)
    sc = Score()
    LEAD, ARP, BASS = 0, 1, 2
    sc.program(LEAD, 80)
    sc.program(ARP, 80)
    sc.program(BASS, 81)
    beat = 0.0
    for section in range(sections):
        if section % 4 == 0:
            key = rng.choice([NOTE[k] for k in ("C", "A", "F", "G", "D")])
            sc.tempo(beat, rng.choice([150, 165, 180]))
        prog = rng.choice([[0, 9, 5, 7], [0, 5, 7, 5], [9, 5, 0, 7]])
        for bar in range(8):
            b0 = beat + 4 * bar
            deg = prog[bar % 4]
            minor = deg == 9
            root = (key + deg) % 12
            arp = [root, root + (3 if minor else 4), root + 7, root + 12]
            for k in range(16):
                sc.note(ARP, b0 + k / 4, 0.2, 60 + arp[k % 4], 60)
            for k in range(8):
                sc.note(BASS, b0 + k / 2, 0.3, 36 + root + (12 if k % 2 else 0), 90)
            for pos in (0, 1.5, 2):
                sc.note(DRUMS, b0 + pos, 0.1, 36, 110)
            for pos in (1, 3):
                sc.note(DRUMS, b0 + pos, 0.1, 40, 110)
            for k in range(8):
                sc.note(DRUMS, b0 + k / 2, 0.05, 42, 60)
            pos = 0.0
            while pos < 4:
                dur = rng.choice([0.25, 0.5, 0.5, 0.75, 1.0])
                sc.note(LEAD, b0 + pos, dur * 0.9, 72 + rng.choice(arp) % 12 + rng.choice([0, 0, 12]), 100)
                pos += dur
        beat += 32
    return sc.midi()


def demo_riff(seed: int = 5) -> mido.MidiFile:
    """Eight seconds of a nylon-string guitar phrase: the shipped demo input."""
    rng = random.Random(seed)
    sc = Score()
    sc.program(0, 24)
    sc.tempo(0, 100)
    chords = [[52, 59, 64, 67, 71], [57, 64, 69, 72, 76], [50, 57, 62, 66, 69], [55, 59, 62, 67, 71]]
    for bar, ch in enumerate(chords[:3]):
        b0 = 4 * bar
        for k, p in enumerate(ch):
            sc.note(0, b0 + k * 0.25, 2.5, p, 80)
        for k in range(4):
            sc.note(0, b0 + 2 + k * 0.5, 0.5, rng.choice(ch[2:]) + rng.choice([0, 2]), 85)
    return sc.midi()


COMPOSERS = {"jazz": jazz_trio, "strings": strings, "rock": rock, "chiptune": chiptune}
