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


class Take:
    """The styled signal written to a file, lined up with what was played in: the engine's
    latency is skipped at the start and its tail flushed at the end."""

    def __init__(self, path: str | os.PathLike, engine: StyleEngine, channels: int) -> None:
        self._f = open_output(path, engine.sample_rate, channels)
        self._skip = engine.latency
        self._channels = channels
        self.samples = 0

    def write(self, y: np.ndarray, *, limit: int | None = None) -> None:
        """Write what follows the skipped latency, never past ``limit`` samples in all."""
        if self._skip:
            k = min(self._skip, y.size)
            y, self._skip = y[k:], self._skip - k
        if limit is not None:
            y = y[: max(0, limit - self.samples)]
        if y.size:
            self._f.write(np.repeat(y[:, None], self._channels, axis=1) if self._channels > 1 else y)
            self.samples += y.size

    def close(self) -> None:
        self._f.close()


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
    done = 0
    t0 = time.perf_counter()
    interrupted = False
    take = Take(output_path, engine, channels)

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
                take.write(engine.process(piece, deadline=deadline), limit=done)  # never more than the input so far
                if on_block:
                    on_block(done, total)
        take.write(engine.flush(), limit=done)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        take.close()
    return RenderResult(samples=take.samples, seconds=time.perf_counter() - t0, interrupted=interrupted)
