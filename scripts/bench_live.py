"""60 s of real music live through JACK at the defaults, with both cores hogged for 25 s in the middle.

Per JACK period, two runs of the same 60 s:
- styled (the defaults): underruns, steps per block, load, and the style gap on the recording;
- `--mix 0` (the engine does all the same work, but the output is the input delayed): the in-to-out
  latency measured by cross-correlation, sample-synchronously, before, during and after the hog,
  beside the figure mst-live reports.
The hog is two busy processes (one per core) from 20 s to 45 s of the clip.

Run: .venv/bin/python scripts/bench_live.py   (writes the 'live' section of BENCHMARKS.md)
Starts its own JACK server (dummy backend, 48 kHz, realtime); needs Debian jackd2.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_foundation import CONTENT_TRACK, style_and_content
from benchmd import AVX2_ONLY, machine, write_section
from jackrig import JackServer, measure_lag, play_through, read_events
from yardstick import Yardstick

from mst_live import Settings, build_preset
from mst_live.io.live import CHUNK_MS, PRIME_MARGIN_S, SAFETY_S
from mst_live.latency import MODES
from mst_live.params import PARAMS

RATE = 48000
# (latency mode, JACK period, environment, options): the AVX2-only cap stands for most laptops (no native
# bfloat16); the last two rows play the strong end of the style knob, and the network on two threads
CONFIGS = (("normal", 256, {}, ()), ("normal", 1024, {}, ()), ("low", 256, {}, ()), ("normal", 256, AVX2_ONLY, ()),
           ("normal", 256, {}, ("--style-weight", "4")), ("normal", 256, {}, ("--threads", "2")))
HOG = (20.0, 45.0)  # seconds of the clip with both cores busy
WINDOWS = {"before": 10.0, "during": 30.0, "after": 52.0}  # where the delay is measured (2 s each)


def unloaded_and_hogged(events: list[dict], field: str) -> tuple[list, list]:
    """``field`` over the status lines (one a second) outside the hog (with a second's margin,
    and after the first second) and inside it."""
    status = [e for e in events if e["type"] == "status" and e.get(field) is not None and e["input_s"] > 1]
    free = [e[field] for e in status if not HOG[0] - 1 <= e["input_s"] <= HOG[1] + 1]
    hogged = [e[field] for e in status if HOG[0] + 1 <= e["input_s"] <= HOG[1]]
    return free, hogged


def step_medians(events: list[dict]) -> tuple[float, float]:
    """The median of the steps the last block got, outside the hog and inside it."""
    free, hogged = unloaded_and_hogged(events, "steps_done")
    return float(np.median(free)), float(np.median(hogged))


def lowest_headroom(events: list[dict]) -> tuple[float, float]:
    """The least styled output the ring held after a device read (ms), outside the hog and inside it."""
    free, hogged = unloaded_and_hogged(events, "headroom_ms")
    return float(min(free)), float(min(hogged))


def main() -> None:
    s = Settings()
    work, style, content, preset = style_and_content(s)
    clip = soxr.resample(content, s.sample_rate, RATE).astype(np.float32)
    ys = Yardstick(s)
    g_style = ys.gram(style)
    presets = {"normal": preset}
    low = work / "style60-low.npz"
    presets["low"] = build_preset([work / "style60.wav"], settings=MODES["low"].settings).save(low)
    rows = []
    for mode, period, env, options in CONFIGS:
        with JackServer(f"mstbench{os.getpid()}", rate=RATE, period=period, realtime=True) as server:
            tag = f"{mode}_{period}" + ("_avx2" if env else "") + "".join(options).replace("--", "_")
            ev_styled, ev_dry = work / f"live_events_{tag}.jsonl", work / f"live_events_{tag}_mix0.jsonl"
            styled = play_through(server.name, presets[mode], clip, ev_styled, work / f"live_{tag}.log",
                                  "--latency", mode, *options, hog=HOG, env=env)
            dry = play_through(server.name, presets[mode], clip, ev_dry, work / f"live_{tag}_mix0.log",
                               "--latency", mode, "--mix", "0", *options, hog=HOG, env=env)
        ev, ev0 = read_events(ev_styled), read_events(ev_dry)
        start, start0 = next(e for e in ev if e["type"] == "start"), next(e for e in ev0 if e["type"] == "start")
        last, last0 = [e for e in ev if e["type"] == "status"][-1], [e for e in ev0 if e["type"] == "status"][-1]
        last["median_steps"] = step_medians(ev)
        last["headroom"] = lowest_headroom(ev)
        lags = {k: 1000 * measure_lag(clip[int(t * RATE) : int((t + 2) * RATE)], dry.rec[int(t * RATE) :],
                                      max_lag=2 * RATE) / RATE for k, t in WINDOWS.items()}
        lag = int(lags["before"] / 1000 * RATE)
        got = soxr.resample(styled.rec[lag : lag + clip.size], RATE, s.sample_rate)
        gap = ys.style_gap_closed(got, content[: got.size], g_style)
        last["server_xruns"], last0["server_xruns"] = styled.xruns, dry.xruns
        xrun_at = sorted({round(t, 1) for t in styled.xrun_at + dry.xrun_at})
        cpu = f"AVX2-only dispatch, {start['precision']}" if env else f"native, {start['precision']}"
        cpu += f", {start['threads']} thread{'s' if start['threads'] > 1 else ''}"
        cpu += f", {' '.join(options)}" if options else ""
        rows.append((f"{mode}, {period} frames ({1000 * period / RATE:.1f} ms), {cpu}", start, last, gap, start0, last0, lags,
                     xrun_at))
        print(mode, period, lags, start0["latency_ms"], last["underruns"], last0["underruns"],
              (last["xruns"], styled.xruns), (last0["xruns"], dry.xruns), flush=True)
    lines = [
        "## Live through JACK",
        "",
        f"`scripts/bench_live.py` on {machine()}: a realtime JACK server (`jackd -R`, dummy backend, 48 kHz), "
        f"`mst-live --preset style60.npz --input mic` at the defaults (the last row at style weight 4, where the "
        f"style's own sound has taken over most of each frame, and the row after it with the network on two threads, "
        f"a file render's choice, beside a device run's one), and a JACK client playing 60 s of `{CONTENT_TRACK}` "
        "into mst-live's input port while recording its output port, sample-synchronously. "
        f"From {HOG[0]:.0f} s to {HOG[1]:.0f} s of the clip a busy process runs on each core. Each period is run twice: "
        "styled (the defaults), and with `--mix 0`, where the engine does the same work but the output is the input "
        "delayed, so that cross-correlation measures the delay exactly (2 s windows at 10 s, 30 s and 52 s: before, "
        "during and after the hog). Underruns count the worker being late (the output ring ran dry: the late audio is "
        "dropped and the gap cross-faded to the dry input, so the latency does not grow); overruns count it behind "
        "(the input ring full); device xruns count PortAudio reporting the callback itself late, beside the JACK "
        "server's own count, taken by the playing client (`jack` xrun callback), as the outside check. Headroom is the "
        "least styled output the ring still held after a device read, taken by the device callback on the ring itself "
        f"(the worker's planner stops its steps {1000 * SAFETY_S:.0f} ms before the ring would run dry). The device "
        "callback is compiled (`mst_live/io/device_callback.py`): it never waits for Python's GIL.",
        "",
        "Each row names the CPU dispatch it ran under and the network's arithmetic there; the AVX2-only rows cap "
        f"every CPU path torch takes (`{' '.join(f'{k}={v}' for k, v in AVX2_ONLY.items())}`), which takes AVX-512, "
        "native bfloat16 and VNNI int8 away as on most laptops.",
        "",
        f"| latency mode, JACK period, CPU | underruns / overruns (styled; mix 0) | device xruns: reported / JACK server (styled; mix 0) | steps per block ({PARAMS['steps'].default} asked): mean; median unloaded / with the hog | least headroom: unloaded / with the hog | blocks with no steps | engine load | style gap closed (yardstick) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, _start, last, gap, _start0, last0, _lags, _at in rows:
        lines.append(
            f"| {label} | **{last['underruns']} / {last['overruns']}; "
            f"{last0['underruns']} / {last0['overruns']}** | **{last['xruns']} / {last['server_xruns']}; "
            f"{last0['xruns']} / {last0['server_xruns']}** | **{last['steps_per_block']:.1f}; "
            f"{last['median_steps'][0]:g} / {last['median_steps'][1]:g}** | "
            f"{last['headroom'][0]:.0f} / {last['headroom'][1]:.0f} ms | {last['dry_blocks']} of {last['blocks']} | {last['load']:.2f} | {gap:.2f} |")
    at = "; ".join(f"{re.sub(r' [(].*? ms[)]', '', label)}: " + (", ".join(f"{t:g}" for t in xs) if xs else "none")
                   for label, *_, xs in rows)
    lines += ["", f"Where in the clip the server's xruns came, both runs together (s; the hog runs {HOG[0]:g}–{HOG[1]:g}): "
              f"{at}."]
    lines += [
        "",
        "| latency mode, JACK period, CPU | latency measured: before / during / after the hog | latency reported | engine | output buffer (of which resamplers' hold-back) | devices (in + out) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, _start, _last, _gap, start0, _last0, lags, _at in rows:
        lines.append(f"| {label} | **{lags['before']:.2f} / {lags['during']:.2f} / {lags['after']:.2f} ms** | "
                     f"{start0['latency_ms']:.1f} ms | {start0['engine_latency_ms']:.1f} ms | {start0['buffer_ms']:.1f} ms "
                     f"({start0['resampler_holdback_ms']:.1f} ms) | {start0['device_latency_ms']:.1f} ms |")
    low, normal = MODES["low"], MODES["normal"]
    lines += ["", "Reported latency = the engine's latency + the output buffer + the devices' input and output latencies "
              "as PortAudio gives them (their sum: a duplex stream has both). The output buffer is what the worker is "
              f"given to compute a block ({normal.compute_blocks:g} of a {normal.block_frames}-frame block in the normal "
              f"mode, {low.compute_blocks:g} {low.block_frames}-frame blocks in the low one), plus the samples the "
              "streaming resamplers between 48 kHz and the engine's rate hold back (`mst_live/dsp/resample.py`), one "
              f"{CHUNK_MS:g} ms polling chunk and a {1000 * PRIME_MARGIN_S:.0f} ms margin. `--latency low` runs preset "
              f"`style60-low.npz`, the same 60 s built with {low.build_flags()}. The style gap is measured on the "
              "full-size yardstick in both modes."]
    body = "\n".join(lines)
    write_section("live", body)
    print(body)


if __name__ == "__main__":
    main()
