"""MIDI control of a running mst-live over a real JACK MIDI port (rtmidi's UNIX_JACK backend)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import soxr
from jackrig import Player, measure_lag, read_events
from yardstick import Yardstick

from mst_live import build_preset

from .conftest import SR, buzzy, melody
from .test_cli import assert_one_line_error

RATE = 48000
BACKEND = "mido.backends.rtmidi/UNIX_JACK"


def pad(seconds: float) -> np.ndarray:
    """A soft sustained sine chord: a style far from the buzzy one."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.05 * sum(np.sin(2 * np.pi * f * t) for f in (196.0, 247.0, 294.0))).astype(np.float32)


@pytest.fixture(scope="module")
def presets(small, small_preset_path, tmp_path_factory):
    """The suite's buzzy preset, and one of a soft pad: a style far from it."""
    d = tmp_path_factory.mktemp("midi_presets")
    sf.write(d / "pad.flac", pad(12.0), SR)
    return small_preset_path, build_preset([d / "pad.flac"], settings=small).save(d / "pad.npz")


@pytest.fixture(scope="module")
def midi_out(jack_server):
    os.environ["JACK_DEFAULT_SERVER"] = jack_server
    import mido

    mido.set_backend(BACKEND)
    port = mido.open_output("mstctl", virtual=True)
    yield port
    port.close()


def start(jack_server, tmp_path, *args):
    env = {**os.environ, "JACK_DEFAULT_SERVER": jack_server, "MIDO_BACKEND": BACKEND, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "mst-live.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mst_live", "--input", "mic", "--quiet", "--midi", "mstctl",
                                 "--events", str(tmp_path / "events.jsonl"), *map(str, args)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def wait_param(events, name, value, since, timeout=2.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if events.exists():
            for e in read_events(events):
                if e["type"] == "param" and e["name"] == name and e["value"] == pytest.approx(value):
                    return time.monotonic() - since
        time.sleep(0.005)
    raise AssertionError(f"no param event {name}={value} within {timeout} s")


def stop(proc, log):
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    text = log.read_text()
    assert proc.returncode == 130, text
    assert "Traceback" not in text


def rms_db(x):
    return 20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12)


def test_cc_and_program_change_drive_a_running_mst_live(jack_server, midi_out, presets, tmp_path):
    import mido

    a, b = presets
    content = melody(14.0, seed=21)
    # the style term alone (no pitch term) and the style's own sound blended in (style weight 2): on
    # a sine melody and a small network that is what shows (at the default the style's envelope
    # leaves a pure tone nearly as it is: correlation 0.85 with the input, offline)
    proc, log = start(jack_server, tmp_path, "--preset", f"{a},{b}", "--steps", "6", "--pitch-weight", "0",
                      "--style-weight", "2")
    player = Player(jack_server, soxr.resample(content, SR, RATE).astype(np.float32))
    events = tmp_path / "events.jsonl"
    block_s = 16 * 128 / SR
    try:
        player.connect()
        marks = {"style_off": player.wait_until(3.0, proc=proc, log=log)}
        t = time.monotonic()
        midi_out.send(mido.Message("control_change", control=1, value=0))
        took = wait_param(events, "style_weight", 0.0, t)
        assert took < block_s + 0.25, took  # within one block (plus event-file polling)
        player.wait_until(marks["style_off"] / RATE + 3.0, proc=proc, log=log)
        # a flood, about 3000 messages a second for a second (unmapped CCs, a mapped one, sysex),
        # must not stall anything. Sent in small bursts: the sender's own JACK MIDI buffer is
        # small and drops what overflows it.
        for i in range(200):
            for k in range(15):
                cc = 11 if k == 0 else 74
                midi_out.send(mido.Message("control_change", control=cc, value=(127 - i % 2) if cc == 11 else k))
            if i % 50 == 0:
                midi_out.send(mido.Message("sysex", data=[1, 2, 3, 4]))
            time.sleep(0.005)
        wait_param(events, "mix", 126 / 127, time.monotonic())
        assert proc.poll() is None, log.read_text()
        marks["level_down"] = player.wait_until(player.pos / RATE + 0.2, proc=proc, log=log)
        midi_out.send(mido.Message("control_change", control=7, value=0))
        wait_param(events, "level", -40.0, time.monotonic())
        midi_out.send(mido.Message("program_change", program=1))
        wait_param(events, "style_index", 1, time.monotonic())
        marks["end"] = player.wait_until(player.pos / RATE + 3.0, proc=proc, log=log)
        assert proc.poll() is None, log.read_text()
    finally:
        player.close()
        stop(proc, log)
    last = [e for e in read_events(events) if e["type"] == "status"][-1]
    assert last["underruns"] == 0
    rec = player.rec
    ref = soxr.resample(content, SR, RATE)
    # the delay, measured where the output is the input (style 0), not taken from what mst-live reports
    at = marks["style_off"] + RATE
    lag = measure_lag(ref[at : at + RATE], rec[at:], max_lag=2 * RATE)

    def seg(start, end):
        return rec[start + lag + RATE // 2 : end + lag]

    styled = seg(int(0.5 * RATE), marks["style_off"])
    plain = seg(marks["style_off"], marks["level_down"])
    quiet = seg(marks["level_down"] + RATE // 2, marks["end"])
    # style 0 gives the content back: the output follows the input closely again

    def corr(segment, start):
        x = ref[start + RATE // 2 : start + RATE // 2 + segment.size]
        n = min(x.size, segment.size)
        return float(np.corrcoef(segment[:n], x[:n])[0, 1])

    assert corr(plain, marks["style_off"]) > 0.9
    assert corr(plain, marks["style_off"]) > corr(styled, int(0.5 * RATE)) + 0.2
    assert rms_db(quiet) < rms_db(plain) - 20


def test_morph_cc_moves_the_output_toward_the_other_preset(jack_server, midi_out, presets, small, tmp_path):
    import mido

    a, b = presets
    content = melody(12.0, seed=22)
    # --phase rebuild: a pure sine pad cannot form over a melody's own phase. Measured file to
    # file on these signals, the held-out Gram distance to the pad before and after the morph
    # went 12.58 -> 13.38 with the input's phase and 18.21 -> 4.46 with a rebuilt one
    proc, log = start(jack_server, tmp_path, "--preset", a, "--morph-preset", b, "--steps", "10", "--follow", "0",
                      "--pitch-weight", "0", "--phase", "rebuild")
    player = Player(jack_server, soxr.resample(content, SR, RATE).astype(np.float32))
    events = tmp_path / "events.jsonl"
    try:
        player.connect()
        switch = player.wait_until(5.0, proc=proc, log=log)
        midi_out.send(mido.Message("control_change", control=2, value=127))
        wait_param(events, "morph", 1.0, time.monotonic())
        end = player.wait_until(switch / RATE + 5.0, proc=proc, log=log)
    finally:
        player.close()
        stop(proc, log)
    # a styled output has no sample-exact delay to measure; a few ms do not matter to its Gram
    lag = int(next(e for e in read_events(events) if e["type"] == "start")["latency_ms"] / 1000 * RATE)
    rec = player.rec
    before = soxr.resample(rec[RATE + lag : switch + lag], RATE, SR)
    after = soxr.resample(rec[switch + lag + RATE : end + lag], RATE, SR)
    ys = Yardstick(small)
    g_a, g_b = ys.gram(0.3 * buzzy(12.0)), ys.gram(pad(12.0))

    def dist(x, g):
        return float(np.linalg.norm((ys.gram(x) - g).numpy()))

    assert dist(after, g_b) < dist(before, g_b)
    assert dist(after, g_a) > dist(before, g_a)


def test_midi_learn_writes_a_mapping(jack_server, midi_out, tmp_path):
    import mido

    from mst_live.midi.mapping import load_mapping

    out = tmp_path / "learned.toml"
    env = {**os.environ, "JACK_DEFAULT_SERVER": jack_server, "MIDO_BACKEND": BACKEND, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mst_live", "midi", "learn", "--midi", "mstctl", "-o", str(out),
                             "--timeout", "30"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    answers = {"style_weight": 21, "mix": 22}
    asked = []
    for line in proc.stdout:
        if line.startswith("move the control for"):
            param = line.split()[4]
            asked.append(param)
            if param in answers:
                time.sleep(0.2)
                for v in (10, 20, 30):  # a knob turned a little: several messages
                    midi_out.send(mido.Message("control_change", channel=2, control=answers[param], value=v))
                    time.sleep(0.01)
            else:  # Enter skips the rest at once
                proc.stdin.write("\n")
                proc.stdin.flush()
        if line.startswith("wrote"):
            break
    proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()
    assert asked[:2] == ["style_weight", "mix"] and len(asked) >= 4
    mapping = load_mapping(out)
    learned = {r.param: (r.channel, r.cc) for r in mapping.rules}
    assert learned == {"style_weight": (2, 21), "mix": (2, 22)}


def test_a_missing_port_is_refused_before_the_engine_is_built(jack_server, midi_out, presets, tmp_path):
    env = {**os.environ, "JACK_DEFAULT_SERVER": jack_server, "MIDO_BACKEND": BACKEND}
    proc = subprocess.run([sys.executable, "-m", "mst_live", "--preset", str(presets[0]), "--input", "mic",
                           "--midi", "nosuchcontroller"], env=env, capture_output=True, text=True, timeout=60)
    # one line, so no network line either: no engine was built
    assert_one_line_error(proc, "nosuchcontroller", "mstctl")
