"""Spectrogram pictures: content, style and output side by side."""

from __future__ import annotations

import os

import numpy as np


def spectrogram_picture(
    path: str | os.PathLike, panels: list[tuple[str, np.ndarray]], *, sample_rate: int, hop_length: int
) -> None:
    """Write a PNG with one log-magnitude panel (bins, frames) per (title, magnitude)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (title, mag) in zip(axes[0], panels, strict=True):
        db = 20 * np.log10(np.maximum(mag, 1e-5))
        top = db.max() if db.size else 0.0
        n_frames = mag.shape[1]
        extent = (0, n_frames * hop_length / sample_rate, 0, sample_rate / 2000)
        ax.imshow(db, origin="lower", aspect="auto", extent=extent, vmin=top - 80, vmax=top, cmap="magma")
        ax.set_title(title)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (kHz)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def file_magnitude(path: str | os.PathLike, settings, *, seconds: float = 30.0) -> np.ndarray:
    """The magnitude spectrogram of an audio file's first ``seconds``, read block by block."""
    from ..dsp.stft import stft
    from ..io.files import iter_mono_blocks

    want = int(seconds * settings.sample_rate)
    parts, have = [], 0
    for block in iter_mono_blocks(path, settings.sample_rate):
        parts.append(block[: want - have])
        have += parts[-1].size
        if have >= want:
            break
    return np.abs(stft(np.concatenate(parts), n_fft=settings.n_fft, hop_length=settings.hop_length))


def comparison_picture(path: str | os.PathLike, content: str | os.PathLike,
                       outputs: list[tuple[str, str | os.PathLike]], preset) -> None:
    """Content, the preset's style excerpt (where it has one) and each (label, output file), their
    first 30 s each."""
    s = preset.settings
    panels = [("content", file_magnitude(content, s))]
    if preset.excerpt_path is not None:
        panels.append((f"style ({preset.name})", file_magnitude(preset.excerpt_path, s)))
    panels += [(label, file_magnitude(output, s)) for label, output in outputs]
    spectrogram_picture(path, panels, sample_rate=s.sample_rate, hop_length=s.hop_length)
