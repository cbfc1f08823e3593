"""mst-live against a real audio server: JACK (dummy backend, no sound card) through PortAudio.

A JACK client in the test plays a clip into mst-live's input port and records its output port.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soxr

from mst_live.quality import Yardstick

from .conftest import SR, buzzy, melody

RATE = 48000


@pytest.fixture(scope="module")
def jack_server():
    jackd = shutil.which("jackd")
    assert jackd, "jackd (Debian jackd2) is needed for the live tests; .ci/run installs it"
    name = f"mst{os.getpid()}"
    proc = subprocess.Popen([jackd, "-r", "-n", name, "-d", "dummy", "-r", str(RATE), "-p", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["JACK_NO_START_SERVER"] = "1"
    import jack

    client = None
    for _ in range(100):
        try:
            client = jack.Client("probe", servername=name)
            break
        except jack.JackOpenError:
            time.sleep(0.1)
    assert client is not None, "the JACK server did not start"
    client.close()
    yield name
    proc.terminate()
    proc.wait(timeout=10)


def start_mst_live(server, preset, events, *extra):
    env = {**os.environ, "JACK_DEFAULT_SERVER": server, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "mst_live", "--preset", str(preset), "--input", "mic",
                             "--events", str(events), "--quiet", "--control-stdin", *map(str, extra)],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


class Player:
    """A JACK client that plays a clip into a port and records another, sample-synchronously."""

    def __init__(self, server, clip):
        import jack

        self.client = jack.Client("tester", servername=server)
        self.clip = clip
        self.rec = np.zeros(clip.size + 5 * RATE, np.float32)
        self.pos = 0
        self.out = self.client.outports.register("play")
        self.inp = self.client.inports.register("rec")
        self.client.set_process_callback(self._process)

    def _process(self, frames):
        a = self.pos
        buf = self.out.get_array()
        buf[:] = 0
        if a < self.clip.size:
            n = min(frames, self.clip.size - a)
            buf[:n] = self.clip[a : a + n]
        if a + frames <= self.rec.size:
            self.rec[a : a + frames] = self.inp.get_array()
        self.pos += frames

    def connect(self, timeout=60.0):
        self.client.activate()
        t0 = time.time()
        while time.time() - t0 < timeout:
            names = [p.name for p in self.client.get_ports()]
            if "PortAudio:in_0" in names and "PortAudio:out_0" in names:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"mst-live's ports never appeared: {names}")
        for src in self.client.get_all_connections("PortAudio:in_0"):
            self.client.disconnect(src, "PortAudio:in_0")
        self.client.connect(self.out, "PortAudio:in_0")
        self.client.connect("PortAudio:out_0", self.inp)
        self.pos = 0  # start the clip now that everything is wired

    def close(self):
        self.client.deactivate()
        self.client.close()


def read_events(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_live_through_jack_styles_changes_level_and_never_underruns(jack_server, small_preset_path, small, tmp_path):
    content = melody(8.0, seed=11)
    clip = soxr.resample(content, SR, RATE).astype(np.float32)
    events = tmp_path / "events.jsonl"
    proc = start_mst_live(jack_server, small_preset_path, events, "--steps", "8")
    player = Player(jack_server, clip)
    try:
        player.connect()
        time.sleep(4.5)
        proc.stdin.write("level -20\n")
        proc.stdin.flush()
        while player.pos < clip.size + 2 * RATE:
            time.sleep(0.05)
            assert proc.poll() is None, proc.communicate()
    finally:
        player.close()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
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
    ys = Yardstick(small)
    gap = ys.style_gap_closed(got, ref, ys.gram(0.3 * buzzy(12.0)))
    assert gap > 0.1, gap
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
