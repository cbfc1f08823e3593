"""File to file through the engine: latency-compensated, and a valid file whatever happens.

The output file is written as blocks are produced and closed in a ``finally``, so Ctrl-C or
SIGTERM leaves a complete, playable file holding everything processed so far.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..engine import StyleEngine
from .files import audio_info, iter_mono_blocks, open_output


@dataclass
class RenderResult:
    samples: int
    seconds: float
    interrupted: bool


def render_file(
    engine: StyleEngine,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    channels: int = 1,
    chunk: int = 4096,
    realtime: bool = False,
    on_block: Callable[[int, int], None] | None = None,
) -> RenderResult:
    """Run a file through ``engine``; output sample n belongs to input sample n.

    ``on_block(done_samples, total_samples)`` is called after each chunk (status, progress).
    With ``realtime`` the input is paced like a live device.
    """
    frames, rate = audio_info(input_path)
    total = round(frames * engine.sample_rate / rate)
    engine.reset()
    skip = engine.latency
    written = 0
    done = 0
    t0 = time.perf_counter()
    interrupted = False
    out = open_output(output_path, engine.sample_rate, channels)

    def write(y: np.ndarray) -> None:
        nonlocal skip, written
        if skip:
            k = min(skip, y.size)
            y, skip = y[k:], skip - k
        y = y[: max(0, done - written)]  # never more than the input so far
        if y.size:
            out.write(np.repeat(y[:, None], channels, axis=1) if channels > 1 else y)
            written += y.size

    try:
        for block in iter_mono_blocks(input_path, engine.sample_rate, block=chunk):
            for i in range(0, block.size, chunk):
                piece = block[i : i + chunk]
                deadline = None
                if realtime:
                    due = t0 + (done + piece.size) / engine.sample_rate
                    time.sleep(max(0.0, t0 + done / engine.sample_rate - time.perf_counter()))
                    deadline = due
                done += piece.size
                write(engine.process(piece, deadline=deadline))
                if on_block:
                    on_block(done, total)
        write(engine.flush())
    except KeyboardInterrupt:
        interrupted = True
    finally:
        out.close()
    return RenderResult(samples=written, seconds=time.perf_counter() - t0, interrupted=interrupted)
