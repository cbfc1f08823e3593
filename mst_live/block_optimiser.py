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


def bounded_gains(content: torch.Tensor, max_change_db: float, ceiling: torch.Tensor | None = None, *,
                  keep_peaks_db: float | None = None):
    """x = log1p(m·exp(b·tanh v)) and dx/dv for the variables v: each bin's magnitude m moved by a
    gain of at most ±``max_change_db``, never by added energy, which in bins the input leaves
    silent would be a broadband noise floor (hiss). With ``ceiling`` (magnitudes like ``content``)
    no bin is raised above it: b is the bound down and the room under the ceiling up. With
    ``keep_peaks_db``, no bin within that many dB of its frame's loudest is cut at all."""
    mag = torch.expm1(content)
    bound = max_change_db / 20.0 * math.log(10.0)  # dB as nats of magnitude
    up = None if ceiling is None else torch.clamp(
        torch.log(ceiling.to(mag.device) + 1e-12) - torch.log(mag + 1e-12), 0.0, bound)
    down = None
    if keep_peaks_db is not None:
        peak = mag.amax(dim=0, keepdim=True)
        down = torch.where(mag >= peak * 10.0 ** (-keep_peaks_db / 20.0), 0.0, bound).to(mag.dtype)

    def shaped(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        th = torch.tanh(v)
        b = bound if up is None and down is None else torch.where(
            v > 0, bound if up is None else up, bound if down is None else down)
        mg = mag * torch.exp(b * th)
        return torch.log1p(mg), mg / (1.0 + mg) * b * (1.0 - th * th)

    return shaped


class BlockOptimiser:
    """Moves a block's log-magnitude toward the style: the loss (style with the memory, content,
    pitch), the bounded gains it is optimised over, and the warm start from the last block's gains.
    Every evaluation's time goes to the ``planner``, which a deadline plans with."""

    def __init__(self, net: FeatureNet, styles: Styles, planner: StepPlanner) -> None:
        self.net, self.styles, self.planner = net, styles, planner
        s = net.settings
        bank = chroma_filterbank(sample_rate=s.sample_rate, n_fft=s.n_fft).astype(np.float32)  # no float64 on MPS
        self._pitch_bank = torch.from_numpy(bank).to(device=net.device)
        self._attack_bank = torch.from_numpy(mel_bank(s, ATTACK_BANDS)).to(device=net.device)
        self.reset()

    def reset(self) -> None:
        self._gains = torch.zeros(0, 1, device=self.net.device)

    def __call__(self, content: torch.Tensor, p: ParamValues, deadline: float | None, *, ctx_in: torch.Tensor,
                 ctx_out: torch.Tensor, memory: FeatureMemory, commit: int | None = None,
                 played: torch.Tensor | None = None, played_before: torch.Tensor | None = None,
                 ceiling: torch.Tensor | None = None) -> tuple[torch.Tensor, int, torch.Tensor | None]:
        """The optimised block, the evaluations spent, and the features of the block returned.
        ``ctx_in`` / ``ctx_out``: the frames before the block, as played and as emitted.
        ``played``: the input's own magnitudes, whose pitch classes and attacks the pitch and attack
        terms hold (``content`` is the first stage's result); by default, those of ``content``.
        ``played_before``: the frame played before the block, which its first attack rises from.
        ``ceiling``: magnitudes no bin is raised above (`bounded_gains`)."""
        loss = self.block_loss(content, p, ctx_in=ctx_in, ctx_out=ctx_out, memory=memory, played=played,
                               played_before=played_before)
        shaped = bounded_gains(content, p.max_change, ceiling, keep_peaks_db=KEEP_PEAKS_DB)
        best: list = [math.inf, None, None]  # the lowest loss seen, its point and its features

        def fg(v: torch.Tensor) -> tuple[float, torch.Tensor]:
            t0 = time.perf_counter()
            x, dx_dv = shaped(v)
            xv = x.requires_grad_(True)
            value, f = loss(xv)
            value.backward()
            out = float(value.detach())
            if out < best[0]:
                best[:] = [out, v, f.detach()]
            self.planner.record_eval(time.perf_counter() - t0)
            return out, xv.grad * dx_dv

        start = (torch.atanh(WARM_START * self._gains).expand_as(content).contiguous()
                 if self._gains.numel() else torch.zeros_like(content))
        v, steps = lbfgs(fg, start, max_evals=p.steps, deadline=deadline, eval_seconds=self.planner.planned_cost)
        if not steps:
            return content, 0, None
        self._gains = torch.tanh(v[:, : commit or v.shape[1]]).mean(dim=1, keepdim=True)  # as shares of the bound
        return shaped(v)[0], steps, (best[2] if best[1] is v else None)

    def block_loss(self, content: torch.Tensor, p: ParamValues, *, ctx_in: torch.Tensor, ctx_out: torch.Tensor,
                   memory: FeatureMemory, played: torch.Tensor | None = None,
                   played_before: torch.Tensor | None = None):
        """The block's loss as a function of its log-magnitude x: style (the Gram and, where the
        preset has the style's mean, its covariance, both with the memory), content, pitch and
        attack terms, over the emitted frames on the left and the last frame repeated on the right.
        The attacks held are those played: the first stage's gains move slowly, but the style's own
        sound (above style weight 1) brings the attacks of its recording."""
        net, target = self.net, self.styles.target(p)
        pad = net.tile_padding(content.shape[1], at_least=LOSS_PAD)
        with torch.no_grad():
            fc = net(torch.cat([ctx_in, content, content[:, -1:].expand(-1, pad)], dim=1))
        bank, beta = self._pitch_bank, p.pitch_weight
        heard = torch.expm1(content) if played is None else played
        pitch_target = pitch_classes(heard, bank) if beta > 0 else None
        attacks, gamma = self._attack_bank, p.attack_weight
        if gamma > 0:
            before = torch.expm1(ctx_out[:, -1:])  # the frame emitted last, which the block's first attack rises from
            with torch.no_grad():
                played_from = torch.cat(
                    [torch.expm1(ctx_in[:, -1:]) if played_before is None else played_before, heard], dim=1)
                floor = float((attacks @ (played_from * played_from)).max()) * ATTACK_RANGE + 1e-20
                attack_target = attack_envelope(played_from, attacks, floor)
                attack_sq = float((attack_target * attack_target).sum()) + 1e-3 * attack_target.numel()
        scale: list[float] = []  # the covariance's and the attacks' factors, set at the first evaluation

        def loss(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = net(torch.cat([ctx_out, x, x[:, -1:].expand(-1, pad)], dim=1))
            style, cov = style_distances(f, target, memory)
            if not scale:
                scale.append(0.0 if cov is None else
                             COVARIANCE_SHARE * max(float(style.detach()), 0.0) / max(float(cov.detach()), 1e-12))
            if cov is not None:
                style = style + scale[0] * cov
            if len(scale) < 2:
                scale.append(ATTACK_SHARE * max(float(style.detach()), 0.0) / attack_sq if gamma > 0 else 0.0)
            value = p.style_weight * style + content_loss(f, fc, p.content_weight)
            mag = torch.expm1(x)
            if pitch_target is not None:
                value = value + pitch_loss(mag, pitch_target, bank, beta)
            if gamma > 0:
                value = value + attack_loss(torch.cat([before, mag], dim=1), attack_target, attacks,
                                            floor, gamma * scale[1])
            return value, f

        return loss
