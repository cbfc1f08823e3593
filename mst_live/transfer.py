"""Offline transfer with L-BFGS, as in Ulyanov & Lebedev: the quality reference.

Audio of any length streams through in bounded memory: its STFT frames are gathered into
segments (30 s by default); each segment is optimised on its own, cross-faded with the previous
one over an overlap in the log-magnitude domain, and its finished frames go straight on to the
streaming phase reconstructor (started from the content's own phase), the peak limiter and the
caller's sink. Nothing longer than one segment is ever held. A Ctrl-C at any stage stops the
work, and what was done is still reconstructed and handed to the sink, so a file written as the
sink leaves a valid file holding it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .compute import choose
from .dsp.fifo import FrameQueue
from .dsp.limiter import PeakLimiter
from .dsp.stft import StreamingSTFT
from .dsp.streaming_gl import StreamingGriffinLim
from .errors import ParameterError, check_int, check_range
from .features import FeatureNet
from .losses import content_loss, style_loss
from .optimize import lbfgs
from .preset import Preset

Progress = Callable[[float, float], None]
PHASE_LOOK_AHEAD = 3  # frames the phase reconstructor sees ahead of the one it commits


@dataclass
class TransferStats:
    samples: int  # samples handed to the sink
    evaluations: int
    interrupted: bool


@dataclass
class TransferResult:
    audio: np.ndarray
    magnitude: np.ndarray
    content_magnitude: np.ndarray
    interrupted: bool
    evaluations: int


def optimise_segment(
    content_logmag: torch.Tensor,
    net: FeatureNet,
    target,
    *,
    n_iter: int,
    style_weight: float,
    content_weight: float,
    init: str,
    generator: torch.Generator,
    on_eval: Callable[[], None],
) -> tuple[torch.Tensor, bool, int]:
    """L-BFGS on one segment's log-magnitude; returns (result, interrupted, evaluations).

    A segment shorter than the network's window (a clip of a few hundred samples) is padded
    on the right with its last frame, so the network sees at least one whole window.
    """
    n = content_logmag.shape[1]
    short = net.context + 1 - n
    if short > 0:
        content_logmag = torch.cat([content_logmag, content_logmag[:, -1:].expand(-1, short)], dim=1)
    with torch.no_grad():
        fc = net(content_logmag)
    if init == "content":
        x = content_logmag.clone()
    else:
        x = torch.randn(content_logmag.shape, generator=generator) * 1e-3
    x = x.to(net.device, torch.float32).contiguous()
    best: list = [math.inf, x]  # the lowest loss evaluated and its point: what an interruption keeps
    evals = 0

    def fg(v: torch.Tensor) -> tuple[float, torch.Tensor]:
        nonlocal evals
        v = v.detach().requires_grad_(True)
        f = net(v)
        loss = style_weight * style_loss(f, target) + content_loss(f, fc, content_weight)
        loss.backward()
        evals += 1
        on_eval()
        value = float(loss.detach())
        if value < best[0]:
            best[:] = [value, v.detach()]
        return value, v.grad

    interrupted = False
    try:
        if n_iter > 0:
            x, _ = lbfgs(fg, x, max_evals=n_iter + n_iter // 4 + 1, history=20)
    except KeyboardInterrupt:
        interrupted, x = True, best[1]
    return torch.clamp(x.detach()[:, :n], min=0.0).cpu().float(), interrupted, evals


def check_transfer_args(n_iter: int, style_weight: float, content_weight: float, init: str, segment_seconds: float,
                        phase_iters: int) -> None:
    """ParameterError for any option out of range: callers check before they open files."""
    check_int("n_iter", n_iter, 0, 100000)
    check_int("phase_iters", phase_iters, 0, 1000)
    check_range("style_weight", style_weight, 0.0, 1e6)
    check_range("content_weight", content_weight, 0.0, 1e6)
    check_range("segment_seconds", segment_seconds, 1.0, 3600.0)
    if init not in ("content", "noise"):
        raise ParameterError(f"init={init!r} must be 'content' or 'noise'")


def transfer_stream(
    blocks: Iterable[np.ndarray],
    preset: Preset,
    sink: Callable[[np.ndarray], None],
    *,
    n_iter: int = 300,
    style_weight: float = 1.0,
    content_weight: float = 1e-2,
    init: str = "content",
    phase_iters: int = 32,
    segment_seconds: float = 30.0,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    net: FeatureNet | None = None,
    total_samples: int | None = None,
    progress: Progress | None = None,
    on_frames: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> TransferStats:
    """Move mono audio ``blocks`` (at the preset's rate) toward the preset's style; output to ``sink``.

    ``sink`` gets the styled audio, in order, as each stretch is finished; all of it together
    is as long as the input. ``total_samples`` (if known) only scales ``progress``.
    ``on_frames(content_magnitude, output_magnitude)`` sees each finished stretch of frames.
    """
    check_transfer_args(n_iter, style_weight, content_weight, init, segment_seconds, phase_iters)
    s = preset.settings
    if net is None:
        chosen = choose(device, precision, network=s.network)
        net = FeatureNet(s, device=chosen.device, precision=chosen.precision)
    preset.check_network(net.settings, net.checksum)
    target = preset.style_target(device=net.device, dtype=torch.float32)

    seg = max(int(segment_seconds * s.sample_rate / s.hop_length), 4 * s.width + 32)
    overlap = 2 * s.width + 16
    up = torch.linspace(0, 1, overlap + 2)[1:-1]  # the next segment's share of the overlap
    per_segment = max(1, n_iter + n_iter // 4 + 1)
    n_segments = 1 if not total_samples else max(1, -(-(1 + total_samples // s.hop_length - overlap) // (seg - overlap)))
    budget = per_segment * n_segments
    done_evals = 0

    def on_eval() -> None:
        nonlocal done_evals
        done_evals += 1
        if progress:
            progress(min(done_evals, budget), budget)

    stft = StreamingSTFT(n_fft=s.n_fft, hop_length=s.hop_length)
    phase = StreamingGriffinLim(n_fft=s.n_fft, hop_length=s.hop_length, n_iter=phase_iters,
                                look_ahead=PHASE_LOOK_AHEAD)
    limiter = PeakLimiter(s.sample_rate)
    gen = torch.Generator().manual_seed(seed)
    pending = FrameQueue()  # complex content frames not yet optimised
    tail: torch.Tensor | None = None  # the previous segment's optimised overlap frames
    n_in = 0  # input samples read
    committed = 0  # frames handed to the phase reconstructor
    emitted = 0
    evaluations = 0
    interrupted = False

    def emit(y: np.ndarray) -> None:
        nonlocal emitted
        y = y[: max(0, n_in - emitted)]
        if y.size:
            sink(limiter.process(y.astype(np.float32, copy=False)))
            emitted += y.size

    def run_segment(frames: np.ndarray, *, last: bool) -> None:
        """Optimise one segment and commit all its frames but the overlap kept for the next."""
        nonlocal tail, committed, evaluations, interrupted
        mag = np.abs(frames)
        x, interrupted, n = optimise_segment(
            torch.log1p(torch.from_numpy(mag)), net, target, n_iter=n_iter, style_weight=style_weight,
            content_weight=content_weight, init=init, generator=gen, on_eval=on_eval,
        )
        evaluations += n
        if tail is not None:
            k = min(overlap, x.shape[1])
            x[:, :k] = tail[:, :k] * (1 - up[:k]) + x[:, :k] * up[:k]
        keep = 0 if last or interrupted else overlap
        tail = x[:, x.shape[1] - keep :] if keep else None
        out_mag = torch.expm1(x[:, : x.shape[1] - keep]).numpy()
        if on_frames:
            on_frames(mag[:, : out_mag.shape[1]], out_mag)
        emit(phase.push(out_mag, phases=frames[:, : out_mag.shape[1]]))
        committed += out_mag.shape[1]

    try:
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            n_in += block.size
            pending.push(stft.push(block))
            while len(pending) >= seg + overlap and not interrupted:
                run_segment(pending.take(seg, keep=overlap), last=False)
            if interrupted:
                break
        if not interrupted:
            if n_in == 0:
                raise ParameterError("the content holds no audio")
            pending.push(stft.flush())
            if len(pending):
                run_segment(pending.take(len(pending)), last=True)
    except KeyboardInterrupt:
        interrupted = True
    # what was done, finished: the phase reconstructor's held frames and the tail of the signal
    try:
        if interrupted and tail is not None:
            emit(phase.push(torch.expm1(tail).numpy(), phases=None))
            committed += tail.shape[1]
        end = n_in if not interrupted else min(n_in, max(0, (committed - 1) * s.hop_length))
        emit(phase.flush(length=end))
    except KeyboardInterrupt:
        interrupted = True
    return TransferStats(samples=emitted, evaluations=evaluations, interrupted=interrupted)


def transfer(content: np.ndarray, preset: Preset, **options: Any) -> TransferResult:
    """`transfer_stream` for audio in memory: mono ``content`` in, the styled audio and magnitudes out.

    ``options`` are `transfer_stream`'s (n_iter, style_weight, content_weight, init, phase_iters,
    segment_seconds, device, precision, seed, net, progress).
    """
    content = np.asarray(content, dtype=np.float32)
    if content.ndim != 1 or content.size == 0:
        raise ParameterError(f"content must be non-empty mono audio, got shape {content.shape}")
    if not np.all(np.isfinite(content)):
        raise ParameterError("content audio contains NaN or infinite samples")
    audio: list[np.ndarray] = []
    mags: list[np.ndarray] = []
    outs: list[np.ndarray] = []

    def frames(c: np.ndarray, o: np.ndarray) -> None:
        mags.append(c)
        outs.append(o)

    step = 1 << 16
    stats = transfer_stream(
        (content[i : i + step] for i in range(0, content.size, step)), preset, audio.append,
        total_samples=content.size, on_frames=frames, **options,
    )
    n_bins = preset.settings.n_bins
    cat = lambda parts: np.concatenate(parts, axis=1) if parts else np.zeros((n_bins, 0), np.float32)  # noqa: E731
    return TransferResult(
        audio=np.concatenate(audio) if audio else np.zeros(0, np.float32),
        magnitude=cat(outs), content_magnitude=cat(mags), interrupted=stats.interrupted,
        evaluations=stats.evaluations,
    )
