"""Offline whole-clip transfer with L-BFGS, as in Ulyanov & Lebedev: the quality reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .dsp.griffinlim import griffinlim
from .dsp.level import limit_peak
from .dsp.stft import stft
from .errors import ParameterError, check_int, check_range
from .features import FeatureNet, log_magnitude
from .losses import content_loss, style_loss
from .preset import Preset

Progress = Callable[[float, float], None]


@dataclass
class TransferResult:
    audio: np.ndarray
    magnitude: np.ndarray
    content_magnitude: np.ndarray
    interrupted: bool
    evaluations: int


def _segments(n_frames: int, seg: int, overlap: int) -> list[tuple[int, int]]:
    if n_frames <= seg:
        return [(0, n_frames)]
    out, start, step = [], 0, seg - overlap
    while True:
        end = min(start + seg, n_frames)
        out.append((start, end))
        if end == n_frames:
            return out
        start += step


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
    """L-BFGS on one segment's log-magnitude; returns (result, interrupted, evaluations)."""
    with torch.no_grad():
        fc = net(content_logmag)
    if init == "content":
        x = content_logmag.clone()
    else:
        x = torch.randn(content_logmag.shape, generator=generator) * 1e-3
    x = x.to(net.device, net.dtype).contiguous().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=n_iter, max_eval=n_iter + n_iter // 4 + 1, tolerance_grad=0.0,
        tolerance_change=0.0, history_size=20, line_search_fn="strong_wolfe",
    )
    evals = 0

    def closure() -> torch.Tensor:
        nonlocal evals
        opt.zero_grad()
        f = net(x)
        loss = style_weight * style_loss(f, target) + content_loss(f, fc, content_weight)
        loss.backward()
        evals += 1
        on_eval()
        return loss

    interrupted = False
    try:
        if n_iter > 0:
            opt.step(closure)
    except KeyboardInterrupt:
        interrupted = True
    return torch.clamp(x.detach(), min=0.0), interrupted, evals


def transfer(
    content: np.ndarray,
    preset: Preset,
    *,
    n_iter: int = 300,
    style_weight: float = 1.0,
    content_weight: float = 1e-2,
    init: str = "content",
    phase_iters: int = 100,
    segment_seconds: float = 30.0,
    device: str = "cpu",
    seed: int = 0,
    net: FeatureNet | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Move ``content`` (mono, at the preset's sample rate) toward the preset's style.

    Long input goes through in overlapping segments (each optimised on its own, cross-faded
    over the overlap), so any length works in bounded memory for the optimiser. A Ctrl-C
    stops the optimisation early: what was done so far is returned with ``interrupted``.
    """
    s = preset.settings
    content = np.asarray(content, dtype=np.float32)
    if content.ndim != 1 or content.size == 0:
        raise ParameterError(f"content must be non-empty mono audio, got shape {content.shape}")
    if not np.all(np.isfinite(content)):
        raise ParameterError("content audio contains NaN or infinite samples")
    n_iter = check_int("n_iter", n_iter, 0, 100000)
    check_range("style_weight", style_weight, 0.0, 1e6)
    check_range("content_weight", content_weight, 0.0, 1e6)
    check_range("segment_seconds", segment_seconds, 1.0, 3600.0)
    if init not in ("content", "noise"):
        raise ParameterError(f"init={init!r} must be 'content' or 'noise'")
    if net is None:
        net = FeatureNet(s, device=device)
    preset.check_network(net.settings, net.checksum)
    target = preset.style_target(device=net.device, dtype=net.dtype)

    spec = stft(content, n_fft=s.n_fft, hop_length=s.hop_length)
    mag = np.abs(spec)
    logmag = torch.from_numpy(log_magnitude(mag))
    n_frames = mag.shape[1]
    seg = max(int(segment_seconds * s.sample_rate / s.hop_length), 4 * s.width + 32)
    overlap = 2 * s.width + 16
    segments = _segments(n_frames, seg, overlap)
    budget = max(1, n_iter + n_iter // 4 + 1) * len(segments)
    done = 0

    def on_eval() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(min(done, budget), budget)

    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros_like(logmag)
    weight = torch.zeros(n_frames, dtype=torch.float32)
    covered = 0
    interrupted = False
    evals = 0
    for start, end in segments:
        x, interrupted, n = optimise_segment(
            logmag[:, start:end].contiguous(), net, target, n_iter=n_iter, style_weight=style_weight,
            content_weight=content_weight, init=init, generator=gen, on_eval=on_eval,
        )
        evals += n
        ramp = torch.ones(end - start)
        if start > 0:
            ramp[:overlap] = torch.linspace(0, 1, overlap + 2)[1:-1]
        if end < n_frames:
            ramp[-overlap:] = torch.minimum(ramp[-overlap:], torch.linspace(1, 0, overlap + 2)[1:-1])
        out[:, start:end] += x.cpu().float() * ramp
        weight[start:end] += ramp
        covered = end if end == n_frames else end - overlap
        if interrupted:
            break
    out = out[:, :covered] / torch.clamp(weight[:covered], min=1e-6)
    magnitude = torch.expm1(out).numpy()
    length = content.size if covered == n_frames else min(content.size, (covered - 1) * s.hop_length)
    n_keep = 1 + length // s.hop_length
    magnitude = magnitude[:, :n_keep]
    audio = griffinlim(
        magnitude, n_iter=phase_iters, hop_length=s.hop_length, n_fft=s.n_fft,
        init=spec[:, :n_keep], length=length,
    )
    audio = limit_peak(audio)
    return TransferResult(audio, magnitude, mag[:, :n_keep], interrupted, evals)
