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
from typing import NamedTuple

import numpy as np
import torch

from .block_optimiser import KEEP_PEAKS_DB, BlockOptimiser
from .compute import Choice, choose
from .dsp.bin_match import BinMatcher
from .dsp.envelope import envelope_ceiling
from .dsp.fifo import FrameQueue, SampleFifo
from .dsp.frame_level import FrameLevel
from .dsp.onsets import NoteLevel, OnsetClock
from .dsp.output_chain import OutputChain
from .dsp.semitones import semitone_amplitudes
from .dsp.stft import StreamingSTFT
from .dsp.streaming_gl import StreamingGriffinLim
from .errors import ParameterError, check_int
from .features import FeatureNet
from .latency import MODES
from .palette import sound_share, toward_sound
from .params import LiveParams, ParamValues
from .planner import StepPlanner
from .preset import Preset
from .styles import Styles
from .warm_up import warm_up

# The optimiser's frame-to-frame level moves are held (`FrameLevel`) up to style weight 1 and let go
# by this share of the style's own sound (style weight 1.26): above 1 the optimiser also fits the
# style's own frames to what is played, level included (held at 0.7 there, folk's onsets at style
# weight 2 fell 0.82 -> 0.77).
HOLD_LEVEL_UNTIL_SHARE = 0.1


class Restyled(NamedTuple):
    """A block as the style left it: log-magnitudes x, and the first stage's result (``content``)
    that the optimiser started from."""

    x: torch.Tensor
    content: torch.Tensor
    steps: int = 0
    share: float = 0.0  # of the style's own sound (`palette.sound_share`)
    exact: bool = True  # the input's own phase fits (nothing of the style's own frames)
    dry: bool = False  # meant for the optimiser, but the deadline left no step


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
    same every time. ``phase="rebuild"`` rebuilds the phase instead of keeping the input's. ``device``
    and ``precision`` are resolved by `compute.choose` ('auto': what this machine runs fastest).
    """

    def __init__(self, preset: Preset, *, block_frames: int = MODES["normal"].block_frames,
                 overlap_frames: int = MODES["normal"].overlap_frames, look_ahead: int = MODES["normal"].look_ahead,
                 follow: float = 1.0, device: str = "auto", precision: str = "auto", params: LiveParams | None = None,
                 net: FeatureNet | None = None, styles: list[Preset] | None = None, morph: Preset | None = None,
                 phase: str = "input") -> None:
        s = self.settings = preset.settings
        self.preset, self.sample_rate = preset, s.sample_rate
        self.block_frames = check_int("block_frames", block_frames, 1, 4096)
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
        self.matcher = BinMatcher(preset.bin_mean, preset.bin_std)  # `reset` seeds its statistics from its prior
        self._clock = OnsetClock(s)  # each frame's age in its note, for the style's own frames
        self._note_level = NoteLevel(s, releases=True)  # and its level in its note
        self._level = FrameLevel(s.n_bins, sample_rate=s.sample_rate, hop_length=s.hop_length)
        self._phase = StreamingGriffinLim(n_fft=s.n_fft, hop_length=s.hop_length, look_ahead=look_ahead)
        self.latency = (self.block_frames + self.overlap_frames + look_ahead - 1) * s.hop_length + s.n_fft - 1
        p = self.params.snapshot()
        self._out = OutputChain(s.sample_rate, follow=follow, mix=p.mix, gain=p.gain, bypass=p.bypass)
        self.planner = StepPlanner()
        self.optimiser = BlockOptimiser(self.net, self.styles, self.planner)
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next call starts a new stream (parameters are kept)."""
        s = self.settings
        self._stft = StreamingSTFT(n_fft=s.n_fft, hop_length=s.hop_length)
        for part in (self._phase, self._clock, self._note_level, self._level, self.matcher, self.optimiser):
            part.reset()
        self._pending = FrameQueue()
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
        """Load every path a knob can reach and time the optimiser (`warm_up.warm_up`)."""
        warm_up(self)

    def fit(self, seconds: float) -> str | None:
        """Make a block without optimiser steps fit in ``seconds`` (the live worker's time per block,
        measured at `warm_up`): where the memory's forward pass does not, it is left out, rather
        than underrun on every block. Returns what was given up, in one line, or None."""
        if not self.optimiser.memory_frames or self.planner.block_cost() + self.planner.memory_pass <= seconds:
            return None
        self.optimiser.without_memory()
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
        self.matcher.learn(raw[:, :commit])
        amplitudes = semitone_amplitudes(torch.from_numpy(mag) ** 2, self.settings)
        ages = self._clock(mag, commit=commit, amplitudes=amplitudes)
        levels = self._note_level((mag * mag).sum(axis=0), ages, commit=commit)
        if p.bypass or p.style_weight == 0.0:
            content = torch.from_numpy(raw).to(self.device)
            block = Restyled(content, content)
        else:
            block = self._restyle(mag, raw, p, deadline, commit=commit, ages=ages, levels=levels, amplitudes=amplitudes)
        t_post = time.perf_counter()  # from here on the block costs the same whatever the steps
        x = torch.clamp(block.x[:, :commit], min=0.0)
        forward = self.optimiser.emitted(x, block.content[:, :commit], torch.from_numpy(mag[:, :commit]).to(self.device))
        if block.dry:
            self.planner.record_dry_block(forward)
            self.stats.dry_blocks += 1
        out_mag = torch.expm1(x).cpu().numpy() if not p.bypass else mag[:, :commit]
        if block.steps:  # the optimiser reshapes each frame; the frame's level moves as the first stage left it
            hold = max(0.0, 1.0 - block.share / HOLD_LEVEL_UNTIL_SHARE)
            out_mag = self._level(out_mag, torch.expm1(block.content[:, :commit]).cpu().numpy(), amount=hold)
        else:
            self._level.reset()
        self._wet.push(self._phase.push(out_mag, phases=frames[:, :commit], exact=block.exact))
        self.stats.blocks += 1
        self.stats.evaluations += block.steps
        self.stats.last_steps = block.steps
        self.planner.record_post(time.perf_counter() - t_post)

    def _restyle(self, mag: np.ndarray, raw: np.ndarray, p: ParamValues, deadline: float | None, *, commit: int,
                 ages: np.ndarray, levels: np.ndarray, amplitudes: torch.Tensor) -> Restyled:
        """The first stage, the style's own sound where the knob reaches it, then the optimiser."""
        depth = self.styles.envelope_depth(p)
        first = self.matcher(raw, *self.styles.bin_stats(p), amount=min(1.0, p.style_weight),
                             max_change_db=p.max_change, depth_db=depth, keep_peaks_db=KEEP_PEAKS_DB)
        share, staged = sound_share(p.style_weight), first
        sound = self.styles.sound(mag, p, ages=ages, levels=levels, amplitudes=amplitudes) if share > 0 else None
        if sound is not None:
            staged = toward_sound(first, sound, share)
            # the optimiser keeps the default balance and reshapes what is left of the input's
            # own sound: its gains over the style's own frames only add noise
            p = replace(p, style_weight=1.0, max_change=p.max_change * (1.0 - share))
        content = torch.from_numpy(staged).to(self.device)
        if p.steps <= 0:
            return Restyled(content, content, share=share, exact=sound is None)
        # no bin rises above the style's envelope over the first stage's result, but each may always
        # get back its own level as played (the first stage's cuts flattened some spectra: 2.65x flatness)
        ceiling = None if depth is None else torch.from_numpy(np.maximum(envelope_ceiling(np.expm1(first), depth), mag))
        x, steps = self.optimiser(content, p, deadline, commit=commit, played=torch.from_numpy(mag).to(self.device),
                                  ceiling=ceiling)
        # the style's own frames have no phase of their own: theirs is rebuilt, from the input's
        exact = sound is None and (steps == 0 or self.phase == "input")
        return Restyled(x, content, steps=steps, share=share, exact=exact, dry=steps == 0)

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
        return self._out.process(wet, dry, mix=p.mix, gain=p.gain, bypass=float(p.bypass),
                                share=sound_share(p.style_weight))
