"""A JACK rig for tests and benchmarks: a dummy-backend server, and a client that plays a clip
into mst-live's input port and records its output port, sample-synchronously.

Needs Debian's jackd2 and PyPI's JACK-Client (the 'test' extra); nothing else imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


class JackServer:
    """``jackd -r -n NAME -d dummy``: a real audio server with no sound card."""

    def __init__(self, name: str, *, rate: int = 48000, period: int = 256, realtime: bool = False,
                 log: str | Path | None = None) -> None:
        self.name, self.rate, self.period, self.realtime = name, rate, period, realtime
        self.log = log  # with a path, jackd runs verbose into it: it names the client an xrun waited on
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> JackServer:
        jackd = shutil.which("jackd")
        if not jackd:
            raise RuntimeError("jackd (Debian jackd2) is needed; .ci/run installs it")
        mode = "-R" if self.realtime else "-r"
        verbose = ["-v"] if self.log else []
        out = open(self.log, "w") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([jackd, mode, *verbose, "-n", self.name, "-d", "dummy", "-r", str(self.rate),
                                      "-p", str(self.period)], stdout=out, stderr=subprocess.STDOUT)
        if self.log:
            out.close()  # the server has its own copy
        os.environ["JACK_NO_START_SERVER"] = "1"
        import jack

        for _ in range(100):
            try:
                jack.Client("probe", servername=self.name).close()
                return self
            except jack.JackOpenError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("the JACK server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def start_mst_live(server: str, preset: str | Path, events: str | Path, *extra: object,
                   log: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """mst-live from the default JACK input to the default output, controllable on stdin.

    Its output goes to the file ``log``, not a pipe: JACK's client library prints a line per
    xrun, and a pipe nobody reads during a long run fills up and stalls the writer. ``env`` is
    added to the environment (a CPU dispatch cap, say).
    """
    env = {**os.environ, **(env or {}), "JACK_DEFAULT_SERVER": server, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "mst_live", "--preset", str(preset), "--input", "mic",
                                 "--events", str(events), "--quiet", "--control-stdin", *map(str, extra)],
                                env=env, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True)


class Player:
    """Plays ``clip`` into PortAudio:in_0 and records PortAudio:out_0 from the same sample on."""

    def __init__(self, server: str, clip: np.ndarray, *, tail_seconds: float = 5.0, rate: int = 48000) -> None:
        import jack

        self.client = jack.Client("tester", servername=server)
        self.clip = clip.astype(np.float32)
        self.rec = np.zeros(clip.size + int(tail_seconds * rate), np.float32)
        self.pos = 0
        # where in the clip (seconds) the server reported each xrun while connected: an outside
        # check on what mst-live reports
        self.xrun_at: list[float] = []
        self.out = self.client.outports.register("play")
        self.inp = self.client.inports.register("rec")
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)

    @property
    def xruns(self) -> int:
        return len(self.xrun_at)

    def _xrun(self, delayed_usecs: float) -> None:
        self.xrun_at.append(self.pos / self.client.samplerate)

    def _process(self, frames: int) -> None:
        a = self.pos
        buf = self.out.get_array()
        buf[:] = 0
        if a < self.clip.size:
            n = min(frames, self.clip.size - a)
            buf[:n] = self.clip[a : a + n]
        if a + frames <= self.rec.size:
            self.rec[a : a + frames] = self.inp.get_array()
        self.pos += frames

    def connect(self, *, play: bool = True, record: bool = True, timeout: float = 120.0) -> None:
        """Wire up once mst-live's ports exist; ``play=False`` only records (an output-only stream),
        ``record=False`` only plays (an input-only stream)."""
        self.client.activate()
        wanted = (["PortAudio:out_0"] if record else []) + (["PortAudio:in_0"] if play else [])
        t0 = time.time()
        names: list[str] = []
        while time.time() - t0 < timeout:
            names = [p.name for p in self.client.get_ports()]
            if all(w in names for w in wanted):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"mst-live's ports never appeared: {names}")
        if play:
            for src in self.client.get_all_connections("PortAudio:in_0"):
                self.client.disconnect(src, "PortAudio:in_0")
            self.client.connect(self.out, "PortAudio:in_0")
        if record:
            self.client.connect("PortAudio:out_0", self.inp)
        self.pos = 0  # the clip starts now that everything is wired
        self.xrun_at = []

    def wait_until(self, seconds: float, *, proc: subprocess.Popen | None = None, log: Path | None = None,
                   timeout: float = 120.0) -> int:
        """Wait until ``seconds`` of the clip have been played (the audio clock, not the wall's),
        failing with ``log``'s text if ``proc`` ends first; returns the position reached."""
        target, t0 = int(seconds * self.client.samplerate), time.monotonic()
        while self.pos < target:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(Path(log).read_text() if log else f"exited with {proc.returncode}")
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"the clip stood at {self.pos} of {target} samples after {timeout} s")
            time.sleep(0.01)
        return self.pos

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def read_events(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def measure_lag(sent: np.ndarray, recorded: np.ndarray, *, max_lag: int) -> int:
    """The delay, in samples, at which ``recorded`` best matches ``sent`` (cross-correlation peak).

    This is the measurement a reported latency is checked against: with ``--mix 0`` mst-live's
    output is its input delayed, so the peak is sharp and exact to the sample.
    """
    import scipy.signal

    n = min(sent.size, recorded.size - max_lag)
    if n <= 0:
        raise ValueError("the recording is shorter than the largest lag looked for")
    corr = scipy.signal.correlate(recorded[: n + max_lag], sent[:n], mode="valid", method="fft")
    return int(np.argmax(corr[: max_lag + 1]))


def cpu_hog(seconds: float) -> subprocess.Popen:
    """A busy loop in its own process that stops by itself after ``seconds``."""
    return subprocess.Popen([sys.executable, "-c", f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"])


def play_through(server: str, preset: str | Path, clip: np.ndarray, events: Path, log: Path, *extra: object,
                 hog: tuple[float, float] | None = None, tail_seconds: float = 2.0, rate: int = 48000,
                 env: dict[str, str] | None = None) -> Player:
    """Play ``clip`` through a live mst-live and record its output; stop it with SIGINT at the end.

    With ``hog=(start, end)`` (seconds of the clip) a busy process runs on every core meanwhile.
    Raises RuntimeError with mst-live's log if it exits by itself.
    """
    events.unlink(missing_ok=True)
    proc = start_mst_live(server, preset, events, *extra, log=log, env=env)
    player = Player(server, clip, rate=rate)
    hogs: list[subprocess.Popen] = []
    try:
        player.connect()
        while player.pos < clip.size + tail_seconds * rate:
            time.sleep(0.05)
            if hog and not hogs and player.pos >= hog[0] * rate:
                hogs = [cpu_hog(hog[1] - hog[0]) for _ in range(os.cpu_count() or 2)]
            if proc.poll() is not None:
                raise RuntimeError(Path(log).read_text())
    finally:
        for h in hogs:
            h.wait(timeout=60)
        player.close()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    return player
