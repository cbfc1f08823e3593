"""StyleEngine: a plugin-style streaming processor. Audio in, styled audio out, fixed latency.

Pipeline per call: input samples -> streaming STFT frames -> every `block_frames` frames, each
bin's log-magnitude mean and spread moved to the style's (dsp/bin_match.py) -> a budgeted L-BFGS
pushes the block's log-magnitude toward the preset's style Gram (the frames already emitted stay
fixed on its left, so the conv sees continuous context, and a memory of recent output features
keeps the long-range statistics on target) -> the input's own phase under the new magnitudes
(or, with phase="rebuild", streaming phase reconstruction) -> dry/wet mix, level, level
following, peak limiter -> out.

Latency, exact, in samples: a block completes when the window of its last frame, overlap
frames included, is full, and the phase reconstructor holds `look_ahead` frames back, so the
worst-case wait between an input sample and the output that covers it is
(block_frames + overlap_frames + look_ahead - 1) * hop + n_fft - 1.
`process` returns as many samples as it is given, delayed by exactly that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from .block_optimiser import BlockOptimiser
from .compute import Choice, choose
from .dsp.bin_match import BinMatcher
from .dsp.envelope import envelope_ceiling
from .dsp.fifo import FrameQueue, SampleFifo
from .dsp.frame_level import FrameLevel
from .dsp.onsets import OnsetClock
from .dsp.output_chain import OutputChain
from .dsp.stft import StreamingSTFT
from .dsp.streaming_gl import StreamingGriffinLim
from .errors import ParameterError, check_int
from .features import FeatureNet
from .latency import MODES
from .losses import FeatureMemory
from .palette import FULL_AT, sound_share, toward_sound
from .params import LiveParams
from .planner import StepPlanner
from .preset import Preset
from .styles import Styles

# The optimiser's frame-to-frame level moves are held (`FrameLevel`) up to style weight 1 and let go
# by this share of the style's own sound (style weight 1.26): above 1 the optimiser also fits the
# style's own frames to what is played, level included (held at 0.7 there, folk's onsets at style
# weight 2 fell 0.82 -> 0.77).
HOLD_LEVEL_UNTIL_SHARE = 0.1


# parameter settings whose blocks take every path a knob can reach: the reshaping alone (the
# defaults), the style's own sound beside the optimiser, and the style's sound alone
WARM_UP_PATHS = ({}, {"style_weight": 2.0, "steps": 1}, {"style_weight": FULL_AT, "steps": 1})


@dataclass
class EngineStats:
    blocks: int = 0
    evaluations: int = 0
    last_steps: int = 0
    dry_blocks: int = 0  # blocks meant for the optimiser that got no step (the deadline)
    underruns: int = 0  # output asked for before it existed: must stay 0
    busy_seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def load(self) -> float:
        return self.busy_seconds / self.audio_seconds if self.audio_seconds else 0.0


def mono_block(block: np.ndarray) -> np.ndarray:
    """``block`` as mono float32, or one ParameterError; NaN and infinite samples silenced."""
    x = np.asarray(block)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ParameterError(f"process() takes mono audio (n,) or (n, 1), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise ParameterError(f"process() takes float audio, got {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if x.size and not np.all(np.isfinite(x)):
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x


class StyleEngine:
    """Mono float32 in, mono float32 out at ``preset.settings.sample_rate``.

    Parameters may change between any two calls through ``engine.params`` (thread-safe). With
    ``deadline`` given to `process`, the optimiser stops in time (fewer steps, then none);
    without it, every block gets exactly ``params.steps`` evaluations, so a file renders the
    same every time. ``match=False`` leaves out the first stage (the per-bin mean and spread
    match); ``phase="rebuild"`` rebuilds the phase instead of keeping the input's. ``device``
    and ``precision`` are resolved by `compute.choose` ('auto': what this machine runs fastest).
    """

    def __init__(self, preset: Preset, *, block_frames: int = MODES["normal"].block_frames,
                 overlap_frames: int = MODES["normal"].overlap_frames, memory_frames: int = 256,
                 look_ahead: int = MODES["normal"].look_ahead, phase_iters: int = 16, follow: float = 1.0,
                 device: str = "auto", precision: str = "auto", params: LiveParams | None = None,
                 net: FeatureNet | None = None, styles: list[Preset] | None = None, morph: Preset | None = None,
                 phase: str = "input", match: bool = True) -> None:
        s = self.settings = preset.settings
        self.preset, self.sample_rate = preset, s.sample_rate
        self.block_frames = check_int("block_frames", block_frames, 1, 4096)
        self.memory_frames = check_int("memory_frames", memory_frames, 0, 100_000)
        self.overlap_frames = check_int("overlap_frames", overlap_frames, 0, 256)
        if not 0.0 <= float(follow) <= 1.0:
            raise ParameterError(f"follow={follow!r} is out of range [0, 1]")
        if phase not in ("rebuild", "input"):
            raise ParameterError(f"phase={phase!r} is not 'rebuild' or 'input'")
        self.phase = phase
        self.compute: Choice = (Choice(net.device, net.precision, "the network given") if net is not None
                                else choose(device, precision, network=s.network))
        self.device = self.compute.device
        self.net = net or FeatureNet(s, device=self.device, precision=self.compute.precision)
        self.styles = Styles([preset, *(styles or [])], morph, net=self.net)
        self.presets, self.morph_preset = self.styles.presets, morph
        self.params = params or LiveParams()
        # the first stage (None with match=False); `reset` seeds its running statistics from its prior
        self.matcher = BinMatcher(preset.bin_mean, preset.bin_std) if match else None
        self._clock = OnsetClock(s)  # each frame's age in its note, for the style's own frames
        self._level = FrameLevel(s.n_bins, sample_rate=s.sample_rate, hop_length=s.hop_length)
        self._phase = StreamingGriffinLim(n_fft=s.n_fft, hop_length=s.hop_length, n_iter=phase_iters,
                                          look_ahead=look_ahead)
        self.latency = (self.block_frames + self.overlap_frames + look_ahead - 1) * s.hop_length + s.n_fft - 1
        p = self.params.snapshot()
        self._out = OutputChain(s.sample_rate, follow=follow, mix=p.mix, gain=p.gain, bypass=p.bypass)
        self.planner = StepPlanner()
        self.optimiser = BlockOptimiser(self.net, self.styles, self.planner)
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next call starts a new stream (parameters are kept)."""
        s, k = self.settings, self.net.context
        self._stft = StreamingSTFT(n_fft=s.n_fft, hop_length=s.hop_length)
        self._phase.reset()
        self._clock.reset()
        self._level.reset()
        if self.matcher is not None:
            self.matcher.reset()
        self._pending = FrameQueue()
        self._ctx_out, self._ctx_in = (torch.zeros(s.n_bins, k, device=self.device) for _ in range(2))
        self._memory = FeatureMemory(s.n_filters, self.memory_frames, device=self.device)
        self.optimiser.reset()
        self._played_last = np.zeros((s.n_bins, 1), np.float32)  # silence before the stream
        self._wet, self._dry = SampleFifo(), SampleFifo()
        for fifo in (self._wet, self._dry):
            fifo.push_zeros(self.latency)
        p = self.params.snapshot()
        self._out.reset(mix=p.mix, gain=p.gain, bypass=p.bypass)
        self._n_in = 0
        self.stats = EngineStats()

    def process(self, block: np.ndarray, *, deadline: float | None = None) -> np.ndarray:
        """Take ``n`` input samples, return ``n`` output samples (``latency`` samples late)."""
        x = mono_block(block)
        t0 = time.perf_counter()
        self._n_in += x.size
        self._dry.push(x)
        self._pending.push(self._stft.push(x))
        span = self.block_frames + self.overlap_frames
        while len(self._pending) >= span:
            self._run_block(self._pending.take(span, keep=self.overlap_frames), deadline, commit=self.block_frames)
        out = self._output(x.size)
        self.stats.busy_seconds += time.perf_counter() - t0
        self.stats.audio_seconds += x.size / self.sample_rate
        return out

    def flush(self) -> np.ndarray:
        """End the stream: the last ``latency`` samples, then the engine starts over."""
        self._pending.push(self._stft.flush())
        while len(self._pending):
            n = min(self.block_frames + self.overlap_frames, len(self._pending))
            commit = n if n < self.block_frames + self.overlap_frames else self.block_frames
            self._run_block(self._pending.take(n, keep=n - commit), None, commit=commit)
        # the reconstructor trims its whole output to the input's length, which leaves exactly
        # `latency` samples queued
        self._wet.push(self._phase.flush(length=self._n_in))
        out = self._output(self.latency)
        stats = self.stats
        self.reset()
        self.stats = stats  # what the stream did stays readable after it ended
        return out

    def warm_up(self) -> None:
        """Run blocks through every path a knob can reach, so that no first use pays lazy set-up
        while a device waits: above a style weight of 1 the style's own sound is matched and its
        phase rebuilt, by kernels that otherwise load on the first block that needs them (45 ms
        there, in the middle of a performance). Then time a pass at the defaults (at least 4 steps,
        whatever the parameters), so that the planner has timings, and what a block without steps
        pays for the memory. The parameters are untouched."""
        live = self.params
        p = live.snapshot()
        base = {"style_index": p.style_index, "morph": p.morph, "steps": max(4, p.steps)}
        try:
            n = (2 * (self.block_frames + self.overlap_frames) + 8) * self.settings.hop_length
            noise = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.05
            for path in WARM_UP_PATHS:  # the other paths' timings are not kept: one step each loads them
                self.params = LiveParams(**{**base, **path})
                self.reset()
                self.process(noise)
            self.planner.clear()  # the passes paid for lazy set-up: time one more at the defaults
            self.reset()
            self.params = LiveParams(**base)
            self.process(noise)
        finally:
            self.params = live
        self.reset()
        with torch.no_grad():
            block = torch.zeros(self.settings.n_bins, self.net.context + self.block_frames, device=self.device)
            t0 = time.perf_counter()
            self.net(block)
            self.planner.record_memory_pass(time.perf_counter() - t0)

    def fit(self, seconds: float) -> str | None:
        """Make a block without optimiser steps fit in ``seconds`` (the live worker's time per block,
        measured at `warm_up`): where the memory's forward pass does not, it is left out, rather
        than underrun on every block. Returns what was given up, in one line, or None."""
        if not self.memory_frames or self.planner.block_cost() + self.planner.memory_pass <= seconds:
            return None
        self.memory_frames = 0
        self._memory = FeatureMemory(self.settings.n_filters, 0, device=self.device)
        return (f"the network in {self.compute.precision} takes {1000 * self.planner.memory_pass:.0f} ms a block where a block "
                f"has {1000 * seconds:.0f} ms: the style memory is off and blocks get few or no optimiser steps "
                f"(--precision auto picks the fastest arithmetic here)")

    def status(self) -> dict:
        """The engine's part of the status screen and of --events: what it did, its parameters."""
        st = self.stats
        return {"load": round(st.load, 3), "latency_ms": round(1000 * self.latency / self.sample_rate, 1),
                "steps_done": st.last_steps, "steps_per_block": round(st.evaluations / max(st.blocks, 1), 2),
                "blocks": st.blocks, "dry_blocks": st.dry_blocks, "underruns": st.underruns,
                "precision": self.compute.precision, "device": str(self.device),
                "eval_ms": round(1000 * self.planner.eval_seconds, 2), **self.params.as_dict()}

    def _run_block(self, frames: np.ndarray, deadline: float | None, *, commit: int) -> None:
        """Optimise all the frames given, emit the first ``commit``; the rest (the overlap) are
        optimised again, from the content, with the next block, once their right-hand context
        exists: the last frames of a block enter the fewest features, and without the overlap
        they came out louder, a flutter at the block rate."""
        p = self.params.snapshot()
        mag = np.abs(frames)
        raw = np.log1p(mag)
        if self.matcher is not None:
            self.matcher.learn(raw[:, :commit])
        ages = self._clock(mag, commit=commit)
        steps, features, exact, share, dry = 0, None, True, 0.0, False
        if p.bypass or p.style_weight == 0.0:
            content = x = torch.from_numpy(raw).to(self.device)
        else:
            depth = self.styles.envelope_depth(p)
            first = staged = raw if self.matcher is None else self.matcher(
                raw, *self.styles.bin_stats(p), amount=min(1.0, p.style_weight), max_change_db=p.max_change,
                depth_db=depth)
            share = sound_share(p.style_weight)
            sound = self.styles.sound(mag, p, ages=ages) if share > 0 else None
            if sound is not None:
                staged = toward_sound(staged, sound, share)
                # the optimiser keeps the default balance and reshapes what is left of the input's
                # own sound: its gains over the style's own frames only add noise
                p = replace(p, style_weight=1.0, max_change=p.max_change * (1.0 - share))
            content = x = torch.from_numpy(staged).to(self.device)
            optimise = p.steps > 0 and (sound is None or share < 1.0)
            if optimise:
                # no bin rises above the style's envelope over the first stage's result, but each may
                # always get back its own level as played (the first stage's cuts flattened some
                # spectra: 2.65x flatness)
                ceiling = None if depth is None else np.maximum(envelope_ceiling(np.expm1(first), depth), mag)
                x, steps, features = self.optimiser(content, p, deadline, ctx_in=self._ctx_in, ctx_out=self._ctx_out,
                                                    memory=self._memory, commit=commit,
                                                    played=torch.from_numpy(mag).to(self.device),
                                                    played_before=torch.from_numpy(self._played_last).to(self.device),
                                                    ceiling=None if ceiling is None else torch.from_numpy(ceiling))
            dry = optimise and steps == 0  # meant for the optimiser, but the deadline left no step
            self.stats.dry_blocks += dry
            # the style's own frames have no phase of their own: theirs is rebuilt, from the input's
            exact = sound is None and (steps == 0 or self.phase == "input")
        t_post = time.perf_counter()  # from here on the block costs the same whatever the steps
        self._played_last = mag[:, commit - 1 : commit].copy()
        x = torch.clamp(x[:, :commit], min=0.0)
        forward = self._remember(x, content[:, :commit], features)
        if dry:
            self.planner.record_dry_block(forward)
        out_mag = torch.expm1(x).cpu().numpy() if not p.bypass else mag[:, :commit]
        if steps:  # the optimiser reshapes each frame; the frame's level moves as the first stage left it
            # (after the memory took the optimiser's frames, whose features its last pass computed)
            hold = max(0.0, 1.0 - share / HOLD_LEVEL_UNTIL_SHARE)
            out_mag = self._level(out_mag, torch.expm1(content[:, :commit]).cpu().numpy(), amount=hold)
        else:
            self._level.reset()
        self._wet.push(self._phase.push(out_mag, phases=frames[:, :commit], exact=exact))
        self.stats.blocks += 1
        self.stats.evaluations += steps
        self.stats.last_steps = steps
        self.planner.record_post(time.perf_counter() - t_post)

    def _remember(self, x: torch.Tensor, content: torch.Tensor, features: torch.Tensor | None) -> float:
        """The emitted frames become the next block's left context, and their features the style
        memory's newest (the optimiser's last pass computed them already, where it ran: a feature
        depends only on frames at or before its own, so the loss's padding did not touch them).
        Returns the seconds a forward pass of the network took here, 0 where none was made."""
        k, commit, forward = self.net.context, x.shape[1], 0.0
        with torch.no_grad():
            if self.memory_frames:
                if features is None:
                    t0 = time.perf_counter()
                    features = self.net(torch.cat([self._ctx_out, x], dim=1))
                    forward = time.perf_counter() - t0
                self._memory.push(features[:, :commit])
            if k:
                self._ctx_out = torch.cat([self._ctx_out, x], dim=1)[:, -k:]
                self._ctx_in = torch.cat([self._ctx_in, content], dim=1)[:, -k:]
        return forward

    def _output(self, n: int) -> np.ndarray:
        wet, dry = self._wet.pop(n), self._dry.pop(n)
        if wet.size < n:  # cannot happen with the latency above; counted, never hidden
            self.stats.underruns += 1
            wet = np.concatenate([wet, np.zeros(n - wet.size, np.float32)])
        if dry.size < n:
            dry = np.concatenate([dry, np.zeros(n - dry.size, np.float32)])
        if n == 0:
            return np.zeros(0, np.float32)
        p = self.params.snapshot()
        return self._out.process(wet, dry, mix=p.mix, gain=p.gain, bypass=float(p.bypass))
