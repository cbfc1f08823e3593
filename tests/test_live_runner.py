"""The live runner's callback side, driven directly: what an underrun does to the sound and the latency."""

from types import SimpleNamespace

import numpy as np
import pytest

from mst_live import load_preset
from mst_live.engine import StyleEngine
from mst_live.io.live import FADE, LiveRunner

OK = SimpleNamespace(input_overflow=False, output_underflow=False)


@pytest.fixture(scope="module")
def engine(small_preset_path):
    return StyleEngine(load_preset(small_preset_path), block_frames=8, device="cpu", precision="float32")


# the worker's chunk sets where in a device block the styled audio runs out: with 10 ms chunks
# 64 or more styled samples are left to fade out of, with 5 ms only 3 (a fade over those was a click)
@pytest.mark.parametrize("chunk_ms", [10.0, 5.0])
def test_an_underrun_fades_to_the_dry_input_and_the_latency_comes_back(engine, chunk_ms):
    sr, frames = engine.sample_rate, 256
    runner = LiveRunner(engine, device_rate=sr, chunk_ms=chunk_ms)
    d = runner.delay
    t = np.arange(8 * sr)
    x = (0.5 * np.sin(2 * np.pi * 220 * t / sr)).astype(np.float32)
    # a stand-in worker whose "styled" output is the input inverted, delayed by the engine's latency:
    # the runner must put out -x(t - delay) normally and +x(t - delay) (dry) while the worker is late
    line = np.concatenate([np.zeros(engine.latency, np.float32), -x])
    made = 0

    def work() -> None:
        nonlocal made
        n = runner.in_ring.available()
        buf = np.zeros(n, np.float32)
        runner.in_ring.read_into(buf)
        runner.to_device(line[made : made + n])
        made += n

    out, headroom = [], []
    late = range(40, 60)  # 20 callbacks (232 ms) with no work at all: the prime runs out
    for k in range(x.size // frames):
        o = np.zeros((frames, 1), np.float32)
        runner.callback(x[k * frames : (k + 1) * frames, None], o, frames, None, OK)
        out.append(o[:, 0])
        if k not in late:
            work()
        if k in (39, 60, x.size // frames - 1):  # before the worker stops, once it is back, at the end
            headroom.append(runner.headroom_s(over=0.0)[0])  # the window just ended
    y = np.concatenate(out)
    # headroom, as the callback measured it: the prime less a block while the worker keeps up,
    # negative once it has run dry (a block's worth missing), and in hand again once it is back
    prime_left = (runner.prime - frames) / sr
    assert headroom[0] == pytest.approx(prime_left, abs=1 / sr)
    assert headroom[1] == pytest.approx(-frames / sr, abs=1 / sr)
    assert headroom[2] > 0 and runner.headroom_s()[1] == pytest.approx(-frames / sr, abs=1 / sr)
    want = np.concatenate([np.zeros(d, np.float32), x])[: y.size]
    assert runner.underruns > 0 and runner.owed > 0 and runner.dropped == runner.owed  # counted, then dropped
    wet_err, dry_err = np.abs(y + want), np.abs(y - want)
    short = np.flatnonzero((dry_err < 1e-6) & (np.abs(want) > 1e-3))  # where wet and dry tell apart
    assert short.size > runner.owed - 2 * FADE  # the missing stretch is the dry input, at the same delay
    start, end = short[0], short[-1]
    assert end - start < runner.owed + 2 * FADE  # one stretch
    assert np.all(wet_err[: start - FADE] < 1e-6)  # before: the styled output, untouched
    assert np.all(wet_err[end + FADE + 1 :] < 1e-6)  # after: the styled output, at the same latency as before
    # no click: the changes over are cross-fades, no step bigger than the signal's own plus the fade's
    step = np.abs(np.diff(y)).max()
    assert step < np.abs(np.diff(x)).max() + 2 * 0.5 / FADE + 1e-3, step


def test_the_status_screen_shows_headroom_and_a_dash_before_any():
    from rich.console import Console

    from mst_live.ui.status import render

    console = Console(record=True, width=120)
    console.print(render({"headroom_ms": 43.2, "lowest_headroom_ms": -5.3}))
    console.print(render({}))
    text = console.export_text()
    assert "43 ms now, -5 ms at the least" in text and "– now, – at the least" in text


def test_an_events_file_holds_one_run(tmp_path):
    """Two runs to the same file: the second replaces the first, so each line's t counts from the
    start of the run in the file, and a script reading it sees one run's start."""
    import json

    from mst_live.ui.events import EventLog

    path = tmp_path / "ev.jsonl"
    for run in (1, 2):
        log = EventLog(path)
        log.emit("start", run=run)
        log.emit("status", run=run)
        log.close()
    lines = [json.loads(ln) for ln in path.read_text().splitlines()]
    assert [e["run"] for e in lines] == [2, 2] and [e["type"] for e in lines] == ["start", "status"]
