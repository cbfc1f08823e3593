"""The precompute stage: style tracks in, a preset out (a low-rank style Gram, each bin's
statistics, and a palette of the style's own frames)."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

from .compute import choose
from .dsp.bin_match import BinStats
from .dsp.stft import StreamingSTFT
from .errors import AudioFileError, ParameterError, check_range
from .features import FeatureNet, log_magnitude
from .io.files import audio_info, expand_audio_paths, file_sha256, iter_mono_blocks
from .palette import PaletteSampler
from .preset import Preset
from .settings import Settings

Progress = Callable[[float, float], None]


class GramAccumulator:
    """Sums F·Fᵀ and F·1 over chunks of frames of one or more signals, keeping the conv's left context.

    Chunks are products in the network's dtype, summed in float64 so that an hour of audio
    loses no precision to the running sum.
    """

    def __init__(self, net: FeatureNet, *, chunk_frames: int = 1024) -> None:
        self.net = net
        self.chunk_frames = chunk_frames
        c = net.settings.n_filters
        self.total = torch.zeros(c, c, dtype=torch.float64)
        self.sum = torch.zeros(c, dtype=torch.float64)
        self.n_frames = 0
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._context: torch.Tensor | None = None

    def add(self, logmag: np.ndarray, *, final: bool = False) -> None:
        """Queue log-magnitude frames (bins, n) of the current signal; ``final`` ends the signal."""
        if logmag.shape[1]:
            self._pending.append(logmag)
            self._pending_n += logmag.shape[1]
        if self._pending_n >= self.chunk_frames or (final and self._pending_n):
            self._run()
        if final:
            self._context = None

    def _run(self) -> None:
        x = torch.from_numpy(np.concatenate(self._pending, axis=1))
        self._pending, self._pending_n = [], 0
        if self._context is not None:
            x = torch.cat([self._context, x], dim=1)
        if x.shape[1] >= self.net.settings.width:
            f = self.net(x)
            self.total += (f @ f.T).to(device="cpu", dtype=torch.float64)
            self.sum += f.sum(dim=1).to(device="cpu", dtype=torch.float64)
            self.n_frames += f.shape[1]
        keep = self.net.context
        self._context = x[:, x.shape[1] - keep :] if keep else x[:, :0]

    def gram(self) -> torch.Tensor:
        return self.total / max(self.n_frames, 1)

    def mean(self) -> torch.Tensor:
        return self.sum / max(self.n_frames, 1)


def low_rank(gram: torch.Tensor, energy: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Top eigenpairs of a PSD Gram keeping ``energy`` of ‖G‖²_F: (basis, eigenvalues, ‖G‖², kept)."""
    sq_norm = float((gram * gram).sum())
    vals, vecs = torch.linalg.eigh(gram.to(torch.float32))
    vals = torch.clamp(vals.flip(0).to(torch.float64), min=0)
    vecs = vecs.flip(1)
    cum = torch.cumsum(vals * vals, 0) / sq_norm
    rank = int(torch.searchsorted(cum, torch.tensor([energy], dtype=torch.float64)).item()) + 1
    rank = min(rank, vals.numel())
    kept = float(cum[rank - 1])
    return vecs[:, :rank].numpy().astype(np.float16), vals[:rank].numpy().astype(np.float32), sq_norm, kept


def build_preset(
    paths: list[str | os.PathLike],
    *,
    settings: Settings | None = None,
    energy: float = 0.9999,
    device: str = "auto",
    precision: str = "auto",
    net: FeatureNet | None = None,
    progress: Progress | None = None,
) -> Preset:
    """Build a preset from audio files and folders, streaming them chunk by chunk. The network
    runs as ``device`` and ``precision`` resolve (`compute.choose`), unless ``net`` is given.

    ``progress(done_seconds, total_seconds)`` is called as input is consumed.
    """
    settings = settings or Settings()
    check_range("energy", energy, 0.5, 1.0)
    files = expand_audio_paths(list(paths))
    if not files:
        raise ParameterError("no style files given")
    durations = []
    for f in files:
        frames, sr = audio_info(f)
        durations.append(frames / sr)
    total = float(sum(durations))
    if net is None:
        chosen = choose(device, precision, network=settings.network)
        net = FeatureNet(settings, device=chosen.device, precision=chosen.precision)
    acc = GramAccumulator(net)
    bins = BinStats(settings.n_bins)
    palette = PaletteSampler(settings)
    done = 0.0
    sources = []
    for f in files:
        framer = StreamingSTFT(n_fft=settings.n_fft, hop_length=settings.hop_length)
        palette.new_stream()
        for block in iter_mono_blocks(f, settings.sample_rate):
            mag = np.abs(framer.push(block))
            logmag = log_magnitude(mag)
            acc.add(logmag)
            bins.add(logmag)
            palette.add(mag)
            done += block.size / settings.sample_rate
            if progress:
                progress(min(done, total), total)
        mag = np.abs(framer.flush())
        logmag = log_magnitude(mag)
        acc.add(logmag, final=True)
        bins.add(logmag)
        palette.add(mag)
        sources.append((f.name, file_sha256(f)))
    if acc.n_frames == 0:
        raise AudioFileError(
            f"style audio is too short: needs at least {settings.width} STFT frames "
            f"({settings.width * settings.hop_length / settings.sample_rate:.2f} s)"
        )
    basis, eig, sq_norm, kept = low_rank(acc.gram(), energy)
    return Preset(
        settings=settings,
        weights_checksum=net.checksum,
        basis=basis,
        eigenvalues=eig,
        gram_sq_norm=sq_norm,
        energy_kept=kept,
        n_frames=acc.n_frames,
        bin_mean=bins.mean().astype(np.float32),
        bin_std=bins.std().astype(np.float32),
        feature_mean=acc.mean().numpy().astype(np.float32),
        sources=sources,
        palette=palette.palette() if palette.seen else None,
        palette_age=palette.palette_ages() if palette.seen else None,
        palette_level=palette.palette_levels() if palette.seen else None,
    )
