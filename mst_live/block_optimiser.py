"""One block's optimisation: the loss over the block, and a budgeted L-BFGS over bounded gains."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .dsp.mel import mel_bank
from .features import FeatureNet
from .losses import (
    FeatureMemory,
    attack_envelope,
    attack_loss,
    chroma_filterbank,
    content_loss,
    pitch_classes,
    pitch_loss,
    style_distances,
)
from .optimize import lbfgs
from .params import ParamValues
from .planner import StepPlanner
from .styles import Styles

# Each block's optimiser starts from this share of the gain each band ended the previous block
# with: live, a block may get only a few steps, and from no gain at all those do little; the
# whole last gain drifts toward a steady EQ (docs/design-notes.md).
WARM_START = 0.7
# The block's last frame is repeated on the right for the loss, at least this often and as much
# more as fills the network's tile (never beyond its context): without it the last frames enter
# fewer features than the rest and come out brighter once per block, a flutter.
LOSS_PAD = 6
# The style's covariance (its texture) enters the loss beside the uncentred Gram, scaled at each
# block's first evaluation to this share of the Gram's distance: a fixed factor suited one style
# and flattened another, since the two distances differ by orders of magnitude from style to style.
COVARIANCE_SHARE = 0.5
# No bin within this many dB of its frame's peak is cut: the covariance term otherwise pulls the
# played partials down toward the floor around them, which is hiss (docs/design-notes.md).
KEEP_PEAKS_DB = 10.0
# The attack term at weight 1 and with every attack of the block lost is worth this share of the
# block's style distance at its first evaluation (the distance's scale differs by orders of
# magnitude from style to style, as for the covariance).
ATTACK_SHARE = 0.15
ATTACK_BANDS = 40  # mel bands the attacks are measured in
ATTACK_RANGE = 1e-8  # bands this far (80 dB) under the block's loudest count as silence


MEMORY_FRAMES = 256  # output feature columns the style memory keeps: 12 s at the default analysis


def bounded_gains(content: torch.Tensor, max_change_db: float, ceiling: torch.Tensor | None = None, *,
                  keep_peaks_db: float | None = None):
    """x = log1p(m·exp(b·tanh v)) for the variables v: each bin's magnitude m moved by a gain of
    at most ±``max_change_db``, never by added energy, which in bins the input leaves silent would
    be a broadband noise floor (hiss). With ``ceiling`` (magnitudes like ``content``) no bin is
    raised above it: b is the bound down and the room under the ceiling up. With
    ``keep_peaks_db``, no bin within that many dB of its frame's loudest is cut at all."""
    mag = torch.expm1(content)
    bound = max_change_db / 20.0 * math.log(10.0)  # dB as nats of magnitude
    up = None if ceiling is None else torch.clamp(
        torch.log(ceiling.to(mag.device) + 1e-12) - torch.log(mag + 1e-12), 0.0, bound)
    down = None
    if keep_peaks_db is not None:
        peak = mag.amax(dim=0, keepdim=True)
        down = torch.where(mag >= peak * 10.0 ** (-keep_peaks_db / 20.0), 0.0, bound).to(mag.dtype)

    def shaped(v: torch.Tensor) -> torch.Tensor:
        b = bound if up is None and down is None else torch.where(
            v > 0, bound if up is None else up, bound if down is None else down)
        return torch.log1p(mag * torch.exp(b * torch.tanh(v)))

    return shaped


class BlockOptimiser:
    """Moves a block's log-magnitude toward the style: the loss (style with the memory, content,
    pitch, attacks), the bounded gains it is optimised over, and what it carries from block to
    block: the frames before the block (as played and as emitted), the memory of the emitted
    frames' features, the frame played last and the gains the last block ended with. Every
    evaluation's time goes to the ``planner``, which a deadline plans with."""

    def __init__(self, net: FeatureNet, styles: Styles, planner: StepPlanner, *,
                 memory_frames: int = MEMORY_FRAMES) -> None:
        self.net, self.styles, self.planner = net, styles, planner
        self.memory_frames = memory_frames
        s = net.settings
        bank = chroma_filterbank(sample_rate=s.sample_rate, n_fft=s.n_fft).astype(np.float32)  # no float64 on MPS
        self._pitch_bank = torch.from_numpy(bank).to(device=net.device)
        self._attack_bank = torch.from_numpy(mel_bank(s, ATTACK_BANDS)).to(device=net.device)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: silence before the next block."""
        s, k, device = self.net.settings, self.net.context, self.net.device
        self._gains = torch.zeros(0, 1, device=device)
        self.ctx_out, self.ctx_in = (torch.zeros(s.n_bins, k, device=device) for _ in range(2))
        self.memory = FeatureMemory(s.n_filters, self.memory_frames, device=device)
        self._played_last = torch.zeros(s.n_bins, 1, device=device)
        self._features: torch.Tensor | None = None  # the last optimised block's, at the point returned

    def without_memory(self) -> None:
        """No style memory from here on: a block then needs no forward pass of its own."""
        self.memory_frames = 0
        self.memory = FeatureMemory(self.net.settings.n_filters, 0, device=self.net.device)

    def __call__(self, content: torch.Tensor, p: ParamValues, deadline: float | None, *,
                 played: torch.Tensor | None = None, ceiling: torch.Tensor | None = None,
                 commit: int | None = None) -> tuple[torch.Tensor, int]:
        """The optimised block and the evaluations spent. ``played``: the input's own magnitudes,
        whose pitch classes and attacks the pitch and attack terms hold (``content`` is the first
        stage's result); by default, those of ``content``. ``ceiling``: magnitudes no bin is
        raised above (`bounded_gains`). ``commit``: the frames that will be emitted, whose gains
        the next block starts from."""
        loss = BlockLoss(self, content, p, played=played)
        shaped = bounded_gains(content, p.max_change, ceiling, keep_peaks_db=KEEP_PEAKS_DB)
        best: list = [math.inf, None]  # the lowest loss seen (the point lbfgs returns) and its features

        def fg(v: torch.Tensor) -> tuple[float, torch.Tensor]:
            t0 = time.perf_counter()
            v = v.detach().requires_grad_(True)
            value, f = loss(shaped(v))
            (grad,) = torch.autograd.grad(value, v)
            out = float(value.detach())
            if out < best[0]:
                best[:] = [out, f.detach()]
            self.planner.record_eval(time.perf_counter() - t0)
            return out, grad

        start = (torch.atanh(WARM_START * self._gains).expand_as(content).contiguous()
                 if self._gains.numel() else torch.zeros_like(content))
        v, steps = lbfgs(fg, start, max_evals=p.steps, deadline=deadline, eval_seconds=self.planner.planned_cost)
        self._features = best[1] if steps else None
        if not steps:
            return content, 0
        self._gains = torch.tanh(v[:, : commit or v.shape[1]]).mean(dim=1, keepdim=True)  # as shares of the bound
        with torch.no_grad():
            return shaped(v), steps

    def emitted(self, x: torch.Tensor, content: torch.Tensor, played: torch.Tensor) -> float:
        """The frames emitted (log-magnitude, as reshaped and as the first stage left them, and
        the magnitudes played) become the next block's left context, and their features the style
        memory's newest (the last optimisation's pass computed them already, where it ran: a
        feature depends only on frames at or before its own, so the loss's padding did not touch
        them). Returns the seconds a forward pass of the network took here, 0 where none was made."""
        k, commit, forward = self.net.context, x.shape[1], 0.0
        features, self._features = self._features, None
        self._played_last = played[:, -1:]
        with torch.no_grad():
            if self.memory_frames:
                if features is None:
                    t0 = time.perf_counter()
                    features = self.net(torch.cat([self.ctx_out, x], dim=1))
                    forward = time.perf_counter() - t0
                self.memory.push(features[:, :commit])
            if k:
                self.ctx_out = torch.cat([self.ctx_out, x], dim=1)[:, -k:]
                self.ctx_in = torch.cat([self.ctx_in, content], dim=1)[:, -k:]
        return forward


class BlockLoss:
    """A block's loss as a function of its log-magnitude x: style (the Gram and, where the preset
    has the style's mean, its covariance, both with the memory), content, pitch and attack terms,
    over the emitted frames on the left and the last frame repeated on the right. The attacks held
    are those played: the first stage's gains move slowly, but the style's own sound (above style
    weight 1) brings the attacks of its recording. The covariance's and the attacks' factors are
    fixed by the first point evaluated (the block's warm start)."""

    def __init__(self, owner: BlockOptimiser, content: torch.Tensor, p: ParamValues, *,
                 played: torch.Tensor | None = None) -> None:
        net = self.net = owner.net
        self.p, self.target, self.memory, self.ctx_out = p, owner.styles.target(p), owner.memory, owner.ctx_out
        self.pad = net.tile_padding(content.shape[1], at_least=LOSS_PAD)
        with torch.no_grad():
            self.fc = net(torch.cat([owner.ctx_in, content, content[:, -1:].expand(-1, self.pad)], dim=1))
        heard = torch.expm1(content) if played is None else played
        self.pitch_bank = owner._pitch_bank
        self.pitch_target = pitch_classes(heard, self.pitch_bank) if p.pitch_weight > 0 else None
        self.attacks, self.attack_target = owner._attack_bank, None
        if p.attack_weight > 0:
            with torch.no_grad():
                played_from = torch.cat([owner._played_last, heard], dim=1)
                self.floor = float((self.attacks @ (played_from * played_from)).max()) * ATTACK_RANGE + 1e-20
                self.attack_target = attack_envelope(played_from, self.attacks, self.floor)
                self.attack_sq = float((self.attack_target ** 2).sum()) + 1e-3 * self.attack_target.numel()
        self.cov_scale: float | None = None
        self.attack_scale = 0.0

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss at x and the block's features there."""
        p = self.p
        f = self.net(torch.cat([self.ctx_out, x, x[:, -1:].expand(-1, self.pad)], dim=1))
        style, cov = style_distances(f, self.target, self.memory)
        if self.cov_scale is None:
            self._fix_scales(style, cov)
        if cov is not None:
            style = style + self.cov_scale * cov
        value = p.style_weight * style + content_loss(f, self.fc, p.content_weight)
        mag = torch.expm1(x)
        if self.pitch_target is not None:
            value = value + pitch_loss(mag, self.pitch_target, self.pitch_bank, p.pitch_weight)
        if self.attack_target is not None:
            before = torch.expm1(self.ctx_out[:, -1:])  # the frame emitted last, which the block's first attack rises from
            value = value + attack_loss(torch.cat([before, mag], dim=1), self.attack_target, self.attacks,
                                        self.floor, p.attack_weight * self.attack_scale)
        return value, f

    def _fix_scales(self, style: torch.Tensor, cov: torch.Tensor | None) -> None:
        style_value = max(float(style.detach()), 0.0)
        self.cov_scale = 0.0 if cov is None else COVARIANCE_SHARE * style_value / max(float(cov.detach()), 1e-12)
        if self.attack_target is not None:
            total = style_value + (0.0 if cov is None else self.cov_scale * float(cov.detach()))
            self.attack_scale = ATTACK_SHARE * max(total, 0.0) / self.attack_sq
