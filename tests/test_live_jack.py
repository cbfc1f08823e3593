"""mst-live against a real audio server: JACK (dummy backend, no sound card) through PortAudio.

A JACK client in the test plays a clip into mst-live's input port and records its output port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soxr
from jackrig import Player, read_events, start_mst_live

from mst_live import load_preset

from .conftest import SR, melody, own_style_distance

RATE = 48000


def test_live_through_jack_styles_changes_level_and_never_underruns(jack_server, small_preset_path, small, tmp_path):
    content = melody(8.0, seed=11)
    clip = soxr.resample(content, SR, RATE).astype(np.float32)
    events = tmp_path / "events.jsonl"
    log = tmp_path / "mst-live.log"
    # a sine melody through a 512-filter network: the style term alone, so that styling shows, and
    # the style's own sound blended in (style weight 2): at the default the style's envelope leaves
    # a pure tone nearly as it is (0.91 of the distance to this style, offline, this melody and 8 steps)
    proc = start_mst_live(jack_server, small_preset_path, events, "--steps", "8", "--pitch-weight", "0",
                          "--style-weight", "2", log=log)
    player = Player(jack_server, clip)
    try:
        player.connect()
        player.wait_until(4.5, proc=proc, log=log)
        proc.stdin.write("level -20\n")
        proc.stdin.flush()
        while player.pos < clip.size + 2 * RATE:
            time.sleep(0.05)
            assert proc.poll() is None, log.read_text()
    finally:
        player.close()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    err = log.read_text()
    assert proc.returncode == 130, err
    assert "Traceback" not in err

    ev = read_events(events)
    start = next(e for e in ev if e["type"] == "start")
    latency = start["latency_ms"] / 1000
    assert 0 < latency < 1.0
    statuses = [e for e in ev if e["type"] == "status"]
    assert statuses[-1]["underruns"] == 0 and statuses[-1]["blocks"] > 10
    assert statuses[-1]["steps_per_block"] > 0
    params = [e for e in ev if e["type"] == "param"]
    assert params and params[0]["name"] == "level" and params[0]["value"] == -20.0

    rec = player.rec
    lag = int(latency * RATE)
    got = soxr.resample(rec[lag : lag + int(4.0 * RATE)], RATE, SR)
    ref = content[: got.size]
    preset = load_preset(small_preset_path)
    assert own_style_distance(preset, got) < 0.9 * own_style_distance(preset, ref)
    # the level change took effect: output in the last seconds ~20 dB down on the first seconds
    before = rec[lag + int(1.0 * RATE) : lag + int(4.0 * RATE)]
    after = rec[lag + int(5.5 * RATE) : lag + int(7.5 * RATE)]
    drop = 20 * np.log10(np.sqrt(np.mean(after**2)) / np.sqrt(np.mean(before**2)))
    assert drop < -12, drop


def test_missing_device_is_one_clear_line(jack_server, small_preset_path, tmp_path):
    env = {**os.environ, "JACK_DEFAULT_SERVER": jack_server}
    out = subprocess.run([sys.executable, "-m", "mst_live", "--preset", str(small_preset_path), "--input",
                          "no-such-device", "--quiet"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no-such-device" in out.stderr and "system" in out.stderr
    devices = subprocess.run([sys.executable, "-m", "mst_live", "devices"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert devices.returncode == 0 and "JACK" in devices.stdout


def test_file_played_live_to_the_output_device(jack_server, small_preset_path, tmp_path):
    import soundfile as sf

    clip = tmp_path / "clip.wav"
    sf.write(clip, melody(6.0, seed=12), SR)
    events = tmp_path / "events.jsonl"
    env = {**os.environ, "JACK_DEFAULT_SERVER": jack_server}
    proc = subprocess.Popen([sys.executable, "-m", "mst_live", "--preset", str(small_preset_path), "--input", str(clip),
                             "--events", str(events), "--quiet", "--steps", "4"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    player = Player(jack_server, np.zeros(0, np.float32), tail_seconds=30.0)
    try:
        player.connect(play=False)
        _, err = proc.communicate(timeout=120)  # ends by itself when the file is done
    finally:
        player.close()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    rec = player.rec[: player.pos]
    assert rec.size > 3 * RATE  # it played in real time, not all at once
    assert np.sqrt(np.mean(rec**2)) > 1e-3
    last = [e for e in read_events(events) if e["type"] == "status"][-1]
    assert last["underruns"] == 0 and last["blocks"] > 5


def test_an_unexpected_fault_in_live_mode_is_one_line_and_a_clean_stop(jack_server, small_preset_path, tmp_path):
    """A bug (not an MstError) while running, or while starting, still ends in one line, not a traceback,
    with the events file closed and the process gone in bounded time."""
    env = {**os.environ, "JACK_DEFAULT_SERVER": jack_server}
    for where, target in (("running", "L.StatusScreen.update"), ("starting", "L.StyleEngine.warm_up")):
        events = tmp_path / f"{where}.jsonl"
        owner, attr = target.rsplit(".", 1)
        code = ("import sys; import mst_live.app.live as L; import mst_live.cli as c\n"
                "def boom(*a, **k):\n    raise ValueError('synthetic fault')\n"
                f"setattr({owner}, {attr!r}, boom)\nsys.exit(c.main(sys.argv[1:]))")
        out = subprocess.run([sys.executable, "-c", code, "--preset", str(small_preset_path), "--input", "mic",
                              "--events", str(events), "--quiet", "--steps", "2"], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode in (1, 2), (where, out.stderr)
        assert "Traceback" not in out.stderr, out.stderr
        errors = [ln for ln in out.stderr.splitlines() if ln.startswith("mst-live: error:")]
        assert len(errors) == 1 and "synthetic fault" in errors[0], out.stderr
        if where == "running":  # the bounded shutdown ran: the fault is in the events, the file closed whole
            ev = read_events(events)
            assert any(e["type"] == "error" and "synthetic fault" in e["message"] for e in ev)


def test_under_a_cpu_hog_no_underruns_and_the_latency_does_not_move(jack_server, small_preset_path, tmp_path):
    from jackrig import measure_lag, play_through

    # a melody alone correlates with itself almost as well one or two samples off (99.9 %), so
    # the smallest disturbance could move the peak; a breathy noise floor makes it sharp
    noise = 0.1 * np.random.default_rng(13).standard_normal(16 * SR).astype(np.float32)
    content = melody(16.0, seed=13) + noise
    clip = soxr.resample(content, SR, RATE).astype(np.float32)
    events, log = tmp_path / "events.jsonl", tmp_path / "mst-live.log"
    # both cores busy from 5 s to 10 s of the clip
    player = play_through(jack_server, small_preset_path, clip, events, log, "--steps", "8", "--mix", "0",
                          hog=(5.0, 10.0), tail_seconds=1.0)
    ev = read_events(events)
    statuses = [e for e in ev if e["type"] == "status"]
    # on a failure, when it happened and how the worker was doing then
    story = [(e["t"], e["type"], e.get("steps_done"), e.get("eval_ms"), e.get("headroom_ms"))
             for e in ev if e["type"] in ("status", "underrun")]
    assert statuses[-1]["underruns"] == 0, story
    assert statuses[-1]["lowest_headroom_ms"] > 0, story
    # --mix 0: the output is the input delayed; measure the delay before, during and after the hog
    rec = player.rec
    lags = [measure_lag(clip[a * RATE : (a + 2) * RATE], rec[a * RATE :], max_lag=2 * RATE) for a in (2, 6, 8, 12)]
    assert max(lags) - min(lags) <= 1, lags
    start = next(e for e in ev if e["type"] == "start")
    assert start["threads"] == 1  # a device run's network takes one thread, whose steps a hog cannot stall at a barrier
    reported = start["latency_ms"]
    assert abs(1000 * lags[0] / RATE - reported) < 1.0, (lags, reported)  # what it says is what it does


def test_mic_to_file_holds_everything_played_lined_up(jack_server, small_preset_path, tmp_path):
    import soundfile as sf

    content = melody(5.0, seed=14)
    clip = soxr.resample(content, SR, RATE).astype(np.float32)
    take, events, log = tmp_path / "take.wav", tmp_path / "events.jsonl", tmp_path / "mst-live.log"
    env = {**os.environ, "JACK_DEFAULT_SERVER": jack_server, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mst_live", "--preset", str(small_preset_path), "--input", "mic",
                                 "--output", str(take), "--mix", "0", "--events", str(events), "--quiet"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    player = Player(jack_server, clip, tail_seconds=1.0)
    try:
        # JACK ports appear when the stream is opened, a moment before it starts capturing: play
        # only once mst-live says it has started, so that the take can hold all of the clip
        t0 = time.monotonic()
        while not (events.exists() and any(e["type"] == "start" for e in read_events(events))):
            assert proc.poll() is None and time.monotonic() - t0 < 120, log.read_text()
            time.sleep(0.02)
        player.connect(record=False)
        while player.pos < clip.size + int(0.2 * RATE):  # end 0.2 s after the last note was played
            time.sleep(0.02)
            assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        player.close()
    assert proc.returncode == 130, log.read_text()
    y, sr = sf.read(take, dtype="float32")
    assert sr == SR
    # the take starts when the stream did, the clip a little later: every quarter second of the clip
    # is in it, in order, to the last one, at the rate it was played
    dropped = periods_missing(clip, soxr.resample(y, SR, RATE))
    assert dropped <= 3, dropped
    # lined up: exactly as long as what was captured, not a latency longer (uncompensated) or shorter
    captured = [e for e in read_events(events) if e["type"] == "status"][-1]["input_s"]
    assert abs(y.size - captured * SR) <= 2, (y.size, captured * SR)


def test_the_take_check_counts_skipped_periods_and_nothing_else():
    """`periods_missing`, on takes made by hand: periods cut anywhere (in the first seconds that
    give the rough start, in the last note, two at once) are counted; a stretch lost or zeroed
    that is not whole periods, or one added, is not in the take."""
    clip = soxr.resample(melody(5.0, seed=14), SR, RATE).astype(np.float32)

    def take(cuts=(), lost=0, added=0, zeroed=0):
        x = np.concatenate([np.zeros(7777, np.float32), clip, np.zeros(RATE, np.float32)])
        for at in sorted(cuts, reverse=True):
            x = np.delete(x, slice(7777 + at, 7777 + at + PERIOD))
        x = np.delete(x, slice(100_000, 100_000 + lost))
        x = np.insert(x, 150_000, np.zeros(added, np.float32))
        x[200_000 : 200_000 + zeroed] = 0
        return soxr.resample(soxr.resample(x, RATE, SR), SR, RATE)  # the way a take comes back

    assert periods_missing(clip, take()) == 0
    for cuts in [(40_000,), (12_000,), (228_000,), (30_000, 170_123)]:
        assert periods_missing(clip, take(cuts)) == len(cuts), cuts
    for spoilt in [dict(lost=100), dict(lost=PERIOD // 2), dict(added=PERIOD), dict(zeroed=400)]:
        with pytest.raises(AssertionError):
            periods_missing(clip, take(**spoilt))


def test_a_device_that_stops_calling_back_is_noticed_and_the_take_closed(small_preset_path, tmp_path):
    """The audio server frozen (SIGSTOP) mid-take: callbacks stop while PortAudio still calls the
    stream active. Within about a second mst-live says so in one line and the take is a valid file."""
    import soundfile as sf
    from jackrig import JackServer

    take, events, log = tmp_path / "take.wav", tmp_path / "events.jsonl", tmp_path / "mst-live.log"
    with JackServer(f"stall{os.getpid()}", rate=RATE) as server:
        env = {**os.environ, "JACK_DEFAULT_SERVER": server.name, "PYTHONUNBUFFERED": "1"}
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "mst_live", "--preset", str(small_preset_path), "--input",
                                     "mic", "--output", str(take), "--events", str(events), "--quiet"],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            t0 = time.monotonic()
            while not (events.exists() and any(e["type"] == "status" and e["input_s"] > 1.0
                                               for e in read_events(events))):
                assert proc.poll() is None and time.monotonic() - t0 < 120, log.read_text()
                time.sleep(0.05)
            os.kill(server.proc.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            while not any(e["type"] == "error" for e in read_events(events)):
                assert time.monotonic() - stopped < 10, read_events(events)[-3:]
                time.sleep(0.02)
            noticed = time.monotonic() - stopped
            proc.wait(timeout=30)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert noticed < 1.5, noticed  # 1 s without a callback, checked 4 times a second
    assert proc.returncode == 2 and "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if ln.startswith("mst-live: error:")]
    assert len(errors) == 1 and "stopped calling back" in errors[0], text
    y, sr = sf.read(take, dtype="float32")  # closed properly: a valid file with what was captured
    assert sr == SR and y.size > SR


PERIOD = 256  # the test's JACK server's period, in frames


def periods_missing(clip: np.ndarray, y: np.ndarray) -> int:
    """How many whole server periods of ``clip`` the take ``y`` (both at the server's rate) is
    missing, asserting that every other 10 ms of the clip is in it, in order, to the last.

    A non-realtime JACK server under load may skip a cycle of a late client (on a busy two-core
    machine: one period never delivered to mst-live), which moves all that follows earlier by
    exactly a period. So the clip is walked through the take 10 ms at a time; where a stretch
    stops matching, what follows must match again whole periods further on in the clip (the
    stretch with the cut, which the resampler smears, and the one after it are the only ones not
    judged). A cut in the clip's first 10 ms cannot be told from the clip starting later.
    """
    from jackrig import measure_lag

    c = RATE // 100
    lag = measure_lag(clip[: 2 * RATE], y, max_lag=y.size - 2 * RATE)  # roughly: a skip may move some of it

    def error(j: int, d: int, n: int = c) -> float:  # of the take against the clip from j, d later
        want, got = clip[j : j + n], y[max(0, j + d) : j + d + n]
        if j + d < 0 or got.size < want.size:
            return np.inf
        return float(np.sum((got - want) ** 2)) / max(float(np.sum(want**2)), n * 1e-6)

    tol = 1e-4
    starts = range(lag - 3 * PERIOD - 8, lag + 3 * PERIOD + 9)
    j, (err, d) = 0, min((error(0, d), d) for d in starts)
    if err > tol:  # a cut in the first stretch: start from the next
        j, (err, d) = c, min((error(c, d), d) for d in starts)
    assert err <= tol, ("the clip's start is not in the take", err)
    dropped = 0
    while j + c <= clip.size:
        if error(j, d) <= tol:
            j += c
            continue
        assert y.size >= j + d + c, (j / RATE, "the take ends before this part of the clip")
        # a cut in this stretch or smeared into it from the next: from the one after, the take
        # holds the clip whole periods further on
        after = [PERIOD * m + e for m in range(1, 4) for e in (-1, 0, 1) if j + 2 * c + PERIOD * m + e < clip.size]
        if not after:
            break  # the clip's last 25 ms: a cut there cannot be told from the take ending early
        err, g = min((error(j + 2 * c + g, d - g, min(2 * c, clip.size - j - 2 * c - g)), g) for g in after)
        assert err <= tol, (j / RATE, err, "this part of the clip is not in the take, whole or cut by skipped periods")
        j, d, dropped = j + 2 * c + g, d - g, dropped + round(g / PERIOD)
    return dropped
