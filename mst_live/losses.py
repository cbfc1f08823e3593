"""Content, pitch and style terms; the style term never forms a C x C Gram of the input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class StyleTarget:
    """A style Gram G_s = W Wᵀ held as its factor W = U Λ^½ (C x r), plus ‖G_s‖²_F.

    A mixture of two styles a·G_A + b·G_B is again W Wᵀ with W = [√a W_A, √b W_B], which is
    what makes live morphing between presets cheap.
    """

    factor: torch.Tensor
    sq_norm: torch.Tensor

    @classmethod
    def from_eig(cls, basis: torch.Tensor, eigenvalues: torch.Tensor, sq_norm: float) -> StyleTarget:
        factor = basis * torch.sqrt(torch.clamp(eigenvalues, min=0)).unsqueeze(0)
        return cls(factor=factor, sq_norm=torch.as_tensor(sq_norm, dtype=factor.dtype, device=factor.device))

    def blend(self, other: StyleTarget, amount: float, cross_sq: float) -> StyleTarget:
        """(1 − a)·G_self + a·G_other, still in factored form; ``cross_sq`` = ‖W_selfᵀ W_other‖²."""
        a = float(amount)
        if a <= 0.0:
            return self
        if a >= 1.0:
            return other
        factor = torch.cat([self.factor * (1 - a) ** 0.5, other.factor * a**0.5], dim=1)
        sq = (1 - a) ** 2 * self.sq_norm + a**2 * other.sq_norm + 2 * a * (1 - a) * cross_sq
        return StyleTarget(factor=factor, sq_norm=sq)

    def to(self, device: torch.device | str, dtype: torch.dtype) -> StyleTarget:
        return StyleTarget(self.factor.to(device=device, dtype=dtype), self.sq_norm.to(device=device, dtype=dtype))


class FeatureMemory:
    """The last ``frames`` feature columns M of the output, and ‖MᵀM‖²_F, which the style loss
    with memory needs. MᵀM is kept up to date as columns come and go: recomputed each block it was
    a 4000 x 256 x 256 product (6.8 ms on 2 cores, more than one optimiser step); appending 7
    columns costs their products with the columns kept (0.2 ms)."""

    def __init__(self, n_filters: int, frames: int, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.n_filters, self.frames, self.device, self.dtype = n_filters, frames, torch.device(device), dtype
        self.reset()

    def reset(self) -> None:
        self.features = torch.zeros(self.n_filters, 0, device=self.device, dtype=self.dtype)
        self._gram = torch.zeros(0, 0, device=self.device, dtype=self.dtype)
        self.gram_sq = 0.0
        self._target_sq: tuple[StyleTarget, float] | None = None

    def target_sq(self, target: StyleTarget) -> float:
        """‖WᵀM‖²_F for the style's factor W: once per block and target, not once per step."""
        if self._target_sq is None or self._target_sq[0] is not target:
            w = self.features.T @ target.factor
            self._target_sq = (target, float((w * w).sum()))
        return self._target_sq[1]

    def push(self, f: torch.Tensor) -> None:
        """Append feature columns (n_filters, n); the oldest beyond ``frames`` are forgotten."""
        if self.frames <= 0:
            return
        f = f.detach().to(self.dtype)
        keep = max(0, min(self.features.shape[1], self.frames - f.shape[1]))
        old = self.features[:, self.features.shape[1] - keep :]
        f = f[:, -self.frames :]
        cross = (f.T @ old).T  # in this order torch reads ``old``, a column slice, in place: 5x faster
        g = self._gram[self._gram.shape[0] - keep :, self._gram.shape[1] - keep :]
        self._gram = torch.cat([torch.cat([g, cross], dim=1), torch.cat([cross.T, f.T @ f], dim=1)], dim=0)
        self.features = torch.cat([old, f], dim=1)
        self.gram_sq = float((self._gram * self._gram).sum())
        self._target_sq = None


def gram(features: torch.Tensor) -> torch.Tensor:
    """The C x C Gram F·Fᵀ / T. Only for tests and small reference computations."""
    return features @ features.T / features.shape[1]


def style_loss(features: torch.Tensor, target: StyleTarget, memory: FeatureMemory | None = None) -> torch.Tensor:
    """‖G − G_s‖²_F for the Gram G = X·Xᵀ/T of the feature columns X = [memory, features], via
    ‖XᵀX‖²/T² − 2‖WᵀX‖²/T + ‖G_s‖² (W the style's factor): T x T and r x T products only, never
    the C x C Gram. The memory's own terms are the ones `FeatureMemory` keeps; only its products
    with ``features`` are new. The one style objective of the engine and of `transfer`."""
    t = features.shape[1]
    ftf = features.T @ features
    if memory is None or memory.features.shape[1] == 0:
        cross = target.factor.T @ features
        return (ftf * ftf).sum() / (t * t) - 2 * (cross * cross).sum() / t + target.sq_norm
    t += memory.features.shape[1]
    mf = features.T @ memory.features  # in this order torch reads the memory in its layout: 3x faster
    cross = target.factor.T @ features
    gram_sq = (memory.gram_sq + 2 * (mf * mf).sum() + (ftf * ftf).sum()) / (t * t)
    return gram_sq - 2 * (memory.target_sq(target) + (cross * cross).sum()) / t + target.sq_norm


def content_loss(features: torch.Tensor, content_features: torch.Tensor, alpha: float) -> torch.Tensor:
    """α·‖F(x) − F(c)‖²."""
    d = features - content_features
    return alpha * (d * d).sum()


def chroma_filterbank(*, sample_rate: int, n_fft: int) -> np.ndarray:
    """12 x (n_fft/2 + 1) weights from STFT bins to pitch classes, C first: librosa's
    `filters.chroma` (A440, no octave weighting), which the tests check it against.

    Each bin feeds the pitch classes near its own pitch through a Gaussian as wide as the bin
    (at least a semitone), so the low bins, wider than a semitone, spread over several."""
    n_bins = n_fft // 2 + 1
    freqs = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    semis = 12.0 * np.log2(freqs / (440.0 / 16.0))
    semis = np.concatenate(([semis[0] - 18.0], semis))  # 0 Hz: 1.5 octaves below bin 1
    width = np.concatenate((np.maximum(np.diff(semis), 1.0), [1.0]))
    d = semis[None, :] - np.arange(12.0)[:, None]
    d = np.remainder(d + 6.0 + 120.0, 12.0) - 6.0
    w = np.exp(-0.5 * (2.0 * d / width[None, :]) ** 2)
    w /= np.linalg.norm(w, axis=0, keepdims=True)
    return np.ascontiguousarray(np.roll(w, -3, axis=0)[:, :n_bins])


def pitch_classes(magnitude: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Each frame's pitch-class profile (12 x T), scaled to unit length: a gain leaves it alone."""
    c = bank @ magnitude
    return c / (c.norm(dim=0, keepdim=True) + 1e-6)


def pitch_loss(magnitude: torch.Tensor, target: torch.Tensor, bank: torch.Tensor, weight: float) -> torch.Tensor:
    """β·Σ_t ‖p_t(x) − p_t(c)‖², p the unit pitch-class profile: keeps the notes that were played.

    The style and content terms see the random features only, and those let the style's own
    pitches in: on four real-music pairs the CQT chroma cosine to the input fell to 0.83 on one.
    A gain or a change of timbre leaves the profile alone; moving energy to other notes does not.
    """
    d = pitch_classes(magnitude, bank) - target
    return weight * (d * d).sum()
