"""Content, pitch and style terms; the style terms never form a C x C Gram of the input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class StyleTarget:
    """A style Gram G_s = W Wᵀ held as its factor W = U Λ^½ (C x r), plus ‖G_s‖²_F, and the
    style's mean feature μ_s where the preset has it (its covariance G_s − μ_s μ_sᵀ).

    A mixture of two styles a·G_A + b·G_B is again W Wᵀ with W = [√a W_A, √b W_B], which is
    what makes live morphing between presets cheap; the mixture's mean is a·μ_A + b·μ_B.
    """

    factor: torch.Tensor
    sq_norm: torch.Tensor
    mean: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # ‖G_s − μ_s μ_sᵀ‖² = ‖G_s‖² − 2‖Wᵀμ_s‖² + (μ_s·μ_s)², once per target, in float64 on the host
        # (numpy): Apple's MPS has no float64
        self.cov_sq = None
        if self.mean is not None:
            m = self.mean.detach().cpu().numpy().astype(np.float64)
            w = self.factor.detach().cpu().numpy().astype(np.float64)
            self.cov_sq = float(self.sq_norm) - 2 * float(((w.T @ m) ** 2).sum()) + float(m @ m) ** 2

    @classmethod
    def from_eig(cls, basis: torch.Tensor, eigenvalues: torch.Tensor, sq_norm: float,
                 mean: torch.Tensor | None = None) -> StyleTarget:
        factor = basis * torch.sqrt(torch.clamp(eigenvalues, min=0)).unsqueeze(0)
        return cls(factor=factor, sq_norm=torch.as_tensor(sq_norm, dtype=factor.dtype, device=factor.device),
                   mean=None if mean is None else mean.to(device=factor.device, dtype=factor.dtype))

    def blend(self, other: StyleTarget, amount: float, cross_sq: float) -> StyleTarget:
        """(1 − a)·G_self + a·G_other, still in factored form; ``cross_sq`` = ‖W_selfᵀ W_other‖².
        The mean blends the same way, where both have one."""
        a = float(amount)
        if a <= 0.0:
            return self
        if a >= 1.0:
            return other
        factor = torch.cat([self.factor * (1 - a) ** 0.5, other.factor * a**0.5], dim=1)
        sq = (1 - a) ** 2 * self.sq_norm + a**2 * other.sq_norm + 2 * a * (1 - a) * cross_sq
        mean = None if self.mean is None or other.mean is None else (1 - a) * self.mean + a * other.mean
        return StyleTarget(factor=factor, sq_norm=sq, mean=mean)

    def to(self, device: torch.device | str, dtype: torch.dtype) -> StyleTarget:
        return StyleTarget(self.factor.to(device=device, dtype=dtype), self.sq_norm.to(device=device, dtype=dtype),
                           None if self.mean is None else self.mean.to(device=device, dtype=dtype))


MEMORY_RANK = 24  # columns of the memory's factor (`FeatureMemory`)
MEMORY_POWER_ITERATIONS = 2


@dataclass
class _MemoryAgainstTarget:
    """The memory's products with one target, which stay fixed through a block's steps."""

    target: StyleTarget
    factor_sq: float  # ‖WᵀM‖²
    mean_sq: float  # ‖Mᵀμ_s‖²
    factor_sum: torch.Tensor  # Wᵀ(M·1)


class FeatureMemory:
    """The last ``frames`` feature columns M of the output, ‖MᵀM‖²_F and the column sum M·1, which
    the style terms with memory need, and a factor Z of at most ``rank`` columns with Z·Zᵀ ≈ M·Mᵀ.
    MᵀM is kept up to date as columns come and go: recomputed each block it was a 4000 x 256 x 256
    product (6.8 ms on 2 cores, more than one optimiser step); appending 7 columns costs their
    products with the columns kept (0.2 ms).

    Every step's products with the memory go through Z instead of M: M·Mᵀ enters the loss only
    through the block's features F (‖MᵀF‖², M·MᵀF), and the ReLU features' memory has a few
    dominant directions, so the 24 leading ones leave those within 1e-4 (relative) on real
    music, at a tenth of the 4000 x 256 x 16 products both ways. Z = M·Q, Q the leading
    eigenvectors' span of MᵀM found by a seeded randomised range finder once per block."""

    def __init__(self, n_filters: int, frames: int, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, rank: int = MEMORY_RANK) -> None:
        self.n_filters, self.frames, self.device, self.dtype = n_filters, frames, torch.device(device), dtype
        self.rank = rank
        gen = torch.Generator().manual_seed(0)
        self._probe = torch.randn(max(frames, 0), rank, generator=gen, dtype=dtype).to(self.device)
        self.reset()

    def reset(self) -> None:
        self.features = torch.zeros(self.n_filters, 0, device=self.device, dtype=self.dtype)
        self._gram = torch.zeros(0, 0, device=self.device, dtype=self.dtype)
        self.gram_sq = 0.0
        self.total = torch.zeros(self.n_filters, device=self.device, dtype=self.dtype)
        self.factor = self.features
        self.row_sums = torch.zeros(0, device=self.device, dtype=self.dtype)  # r = MᵀM·1
        self.row_sums_sq = 0.0  # ‖r‖²
        self.total_image = self.total  # M·r = M·Mᵀ·(M·1)
        self._against: _MemoryAgainstTarget | None = None

    def against(self, target: StyleTarget) -> _MemoryAgainstTarget:
        """The memory's products with ``target``: once per block and target, not once per step."""
        if self._against is None or self._against.target is not target:
            w = self.features.T @ target.factor
            mean_sq = 0.0 if target.mean is None else float(((self.features.T @ target.mean) ** 2).sum())
            self._against = _MemoryAgainstTarget(target, float((w * w).sum()), mean_sq, target.factor.T @ self.total)
        return self._against

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
        self.total = self.features.sum(dim=1)
        self.factor = self.features if self.features.shape[1] <= self.rank else self.features @ self._leading_span()
        self.row_sums = self._gram.sum(dim=1)
        self.row_sums_sq = float(self.row_sums @ self.row_sums)
        self.total_image = self.features @ self.row_sums
        self._against = None

    def _leading_span(self) -> torch.Tensor:
        """An orthonormal basis (m x rank) of MᵀM's leading eigenvectors: a fixed random probe
        through two power iterations (Halko, Martinsson & Tropp 2011)."""
        y = self._gram @ self._probe[: self._gram.shape[0]]
        for _ in range(MEMORY_POWER_ITERATIONS):
            y = self._gram @ torch.linalg.qr(y).Q
        return torch.linalg.qr(y).Q


def gram(features: torch.Tensor) -> torch.Tensor:
    """The C x C Gram F·Fᵀ / T, for the yardstick and reference computations (the loss never forms it)."""
    return features @ features.T / features.shape[1]


def style_loss(features: torch.Tensor, target: StyleTarget, memory: FeatureMemory | None = None) -> torch.Tensor:
    """‖G − G_s‖²_F for the Gram G = X·Xᵀ/T of the feature columns X = [memory, features]: the
    one style objective of the engine and of `transfer` (`style_distances`)."""
    return style_distances(features, target, memory)[0]


def style_distances(features: torch.Tensor, target: StyleTarget,
                    memory: FeatureMemory | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """‖G − G_s‖²_F and, where the target has a mean, ‖C − C_s‖²_F, for X = [memory, features],
    G = X·Xᵀ/T, C = G − μμᵀ (μ = X·1/T) and C_s = G_s − μ_s μ_sᵀ.

    Via ‖XᵀX‖²/T² − 2‖WᵀX‖²/T + ‖G_s‖² (W the style's factor) and, for the covariance,
    ‖C‖² = ‖XᵀX‖²/T² − 2‖Xᵀμ‖²/T + (μ·μ)² and ⟨C, C_s⟩ = ‖WᵀX‖²/T − ‖Xᵀμ_s‖²/T − ‖Wᵀμ‖² + (μ·μ_s)²:
    T x T and r x T products only, never the C x C Gram. The memory's own terms are the ones
    `FeatureMemory` keeps; only its products with ``features`` are new, and those go through its
    low-rank factor (within 1e-4 of the full memory's on real music).

    The uncentred Gram is dominated by the mean's outer product, so it moves the level of every
    feature; the covariance is what is left, the texture: how the features vary together.

    One autograd step with its gradient written out (`_StyleDistances`): as a graph of small
    operations, the terms' backward pass cost more than the network's own (1.5 ms a step)."""
    mem = memory if memory is not None and memory.features.shape[1] else None
    gram_dist, cov = _StyleDistances.apply(features, target, mem)
    return gram_dist, (cov if target.mean is not None else None)


class _StyleDistances(torch.autograd.Function):
    """`style_distances` as one autograd step. With A = FᵀF, B = MᵀF, P = WᵀF, τ = X·1 and
    v = Xᵀτ (v_f its block part), the gradients with respect to the block F are (M·B through the
    memory's factor, Z·ZᵀF):
    ‖XᵀX‖²: 4(F·A + M·B); ‖WᵀX‖²: 2W·P; ‖Xᵀτ‖²: 2(τ·v_fᵀ + X·v 1ᵀ); ‖Xᵀμ_s‖²: 2μ_s(Fᵀμ_s)ᵀ;
    (μ·μ)²: 4(μ·μ)τ1ᵀ/T²; ‖Wᵀτ‖²: 2W·Wᵀτ 1ᵀ; (μ·μ_s)²: 2(μ·μ_s)μ_s 1ᵀ/T."""

    @staticmethod
    def forward(ctx, f: torch.Tensor, target: StyleTarget, mem: FeatureMemory | None):
        n = f.shape[1]
        t = n + (mem.features.shape[1] if mem is not None else 0)
        w = target.factor
        a = f.T @ f
        p = w.T @ f
        gram_sq, factor_sq = _sq(a), _sq(p)
        b = None
        if mem is not None:
            b = mem.factor.T @ f  # (r, n): ‖b‖² ≈ ‖MᵀF‖², read in the factor's own layout
            known = mem.against(target)
            gram_sq = gram_sq + (mem.gram_sq + 2 * _sq(b))
            factor_sq = factor_sq + known.factor_sq
        gram_dist = gram_sq / (t * t) - 2 * factor_sq / t + target.sq_norm
        ctx.target, ctx.mem, ctx.t, ctx.parts = target, mem, t, None
        ctx.save_for_backward(f, a, p, b if b is not None else a)
        if target.mean is None:
            return gram_dist, torch.zeros_like(gram_dist)
        mu_s = target.mean
        tau = f.sum(dim=1)
        v_f = a.sum(dim=1)  # Fᵀτ: A·1, plus the memory's part below
        wx = p.sum(dim=1)
        xs_sq = mean_sq = 0.0
        v_m = None
        if mem is not None:
            # ‖Mᵀτ‖² = ‖r‖² + 2(M·r)·(F·1) + ‖Mᵀ(F·1)‖², r = MᵀM·1: only the last, the smallest,
            # through the factor
            v_m = b.sum(dim=1)  # Zᵀ(F·1)
            xs_sq = (mem.row_sums_sq + 2 * torch.dot(mem.total_image, tau)) + _sq(v_m)
            tau = tau + mem.total
            v_f = torch.addmv(v_f, f.T, mem.total)  # the block part of (M·1)ᵀF, exactly
            mean_sq = known.mean_sq
            wx = wx + known.factor_sum
        u = f.T @ mu_s
        xs_sq = xs_sq + _sq(v_f)
        mean_sq = mean_sq + _sq(u)
        q, r = torch.dot(tau, tau) / (t * t), torch.dot(tau, mu_s) / t  # μ·μ, μ·μ_s
        c_sq = gram_sq / (t * t) - 2 * xs_sq / t**3 + q * q
        inner = factor_sq / t - mean_sq / t - _sq(wx) / (t * t) + r * r
        ctx.parts = (tau, v_f, v_m, wx, u, q, r)
        return gram_dist, c_sq - 2 * inner + target.cov_sq

    @staticmethod
    def backward(ctx, g_gram: torch.Tensor, g_cov: torch.Tensor):
        f, a, p, b = ctx.saved_tensors
        target, mem, t = ctx.target, ctx.mem, ctx.t
        n, w = f.shape[1], target.factor
        gg = float(g_gram)
        gc = float(g_cov) if ctx.parts is not None else 0.0
        # d‖XᵀX‖² and d‖WᵀX‖², shared by both distances
        k_gram, k_factor = (gg + gc) / (t * t), -2 * (gg + gc) / t
        grad = torch.addmm(f @ a, w, p, beta=4 * k_gram, alpha=2 * k_factor)
        if not gc:
            if mem is not None:
                grad.addmm_(mem.factor, b, alpha=4 * k_gram)
            return grad, None, None
        tau, v_f, v_m, wx, u, q, r = ctx.parts
        q, r = float(q), float(r)
        mu_s = target.mean
        k_xs = -2 * gc / t**3
        grad.addr_(tau, v_f, alpha=2 * k_xs).addr_(mu_s, u, alpha=4 * gc / t)
        # Xv = M·Mᵀτ + F·v_f, one column added to every column: M·r, and Z·Zᵀ(F·1) in the same
        # product as Z·B
        ones_col = torch.addmv(tau, f, v_f, beta=4 * gc * q / (t * t), alpha=2 * k_xs)
        ones_col.addmv_(w, wx, alpha=4 * gc / (t * t)).add_(mu_s, alpha=-4 * gc * r / t)
        if mem is not None:
            ones_col.add_(mem.total_image, alpha=2 * k_xs)
            mb = mem.factor @ torch.cat([b * (4 * k_gram), (v_m * (2 * k_xs))[:, None]], dim=1)
            grad.add_(mb[:, :n])
            ones_col.add_(mb[:, n])
        return grad.add_(ones_col[:, None]), None, None


def _sq(x: torch.Tensor) -> torch.Tensor:
    """‖x‖² as one product."""
    x = x.reshape(-1)
    return torch.dot(x, x)


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


def attack_envelope(magnitude: torch.Tensor, bank: torch.Tensor, floor: float) -> torch.Tensor:
    """Each frame's rise over the frame before (T − 1 values for T frames): the positive change of
    each band's log power, averaged over the bands. This is where notes start. A steady gain, an
    EQ, leaves it alone; a band that swells or dips from frame to frame moves it."""
    level = torch.log(bank @ (magnitude * magnitude) + floor)
    return torch.relu(level[:, 1:] - level[:, :-1]).mean(dim=0)


def attack_loss(magnitude: torch.Tensor, target: torch.Tensor, bank: torch.Tensor, floor: float,
                weight: float) -> torch.Tensor:
    """γ·Σ_t (a_t(x) − a_t(c))², a the `attack_envelope`: keeps the attacks that were played.

    The style terms move each band's level frame by frame, and on a style with hits of its own
    those swells read as attacks the player never made (onset correlation 0.97 where the first
    stage alone kept 0.99). This term lets the optimiser trade an attack against style itself."""
    d = attack_envelope(magnitude, bank, floor) - target
    return weight * (d * d).sum()
