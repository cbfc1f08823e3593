"""Warming an engine up before a device waits on it: every lazy set-up paid, the optimiser timed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from .palette import FULL_AT
from .params import LiveParams

if TYPE_CHECKING:
    from .engine import StyleEngine

# parameter settings whose blocks take every path a knob can reach: the reshaping alone (the
# defaults), the style's own sound beside the optimiser, and the style's sound alone
WARM_UP_PATHS = ({}, {"style_weight": 2.0, "steps": 1}, {"style_weight": FULL_AT, "steps": 1})


def warm_up(engine: StyleEngine) -> None:
    """Run blocks through every path a knob can reach, so that no first use pays lazy set-up
    while a device waits: above a style weight of 1 the style's own sound is matched and its
    phase rebuilt, by kernels that otherwise load on the first block that needs them (45 ms
    there, in the middle of a performance). Then time a pass at the defaults (at least 4 steps,
    whatever the parameters), so that the planner has timings, and what a block without steps
    pays for the memory. The parameters are untouched; the engine is reset."""
    live = engine.params
    p = live.snapshot()
    base = {"style_index": p.style_index, "morph": p.morph, "steps": max(4, p.steps)}
    try:
        n = (2 * (engine.block_frames + engine.overlap_frames) + 8) * engine.settings.hop_length
        noise = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.05
        for path in WARM_UP_PATHS:  # the other paths' timings are not kept: one step each loads them
            engine.params = LiveParams(**{**base, **path})
            engine.reset()
            engine.process(noise)
        engine.planner.clear()  # the passes paid for lazy set-up: time one more at the defaults
        engine.reset()
        engine.params = LiveParams(**base)
        engine.process(noise)
    finally:
        engine.params = live
    engine.reset()
    with torch.no_grad():
        block = torch.zeros(engine.settings.n_bins, engine.net.context + engine.block_frames, device=engine.device)
        t0 = time.perf_counter()
        engine.net(block)
        engine.planner.record_memory_pass(time.perf_counter() - t0)
