"""Reading and writing audio files: any format soundfile reads, mono, resampled with soxr."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioFileError, AudioWarning

BLOCK = 1 << 16


def audio_extensions() -> set[str]:
    """Lower-case file endings soundfile can read on this machine (mp3 included where supported)."""
    return {"." + k.lower() for k in sf.available_formats()} | {".oga", ".opus"}


def _open(path: str | os.PathLike) -> sf.SoundFile:
    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"{p}: no such file")
    if p.is_dir():
        raise AudioFileError(f"{p}: is a folder, not an audio file")
    try:
        f = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioFileError(f"{p}: not a readable audio file ({exc})") from None
    if f.frames == 0:
        f.close()
        raise AudioFileError(f"{p}: contains no audio")
    return f


def audio_info(path: str | os.PathLike) -> tuple[int, int]:
    """(frames, sample rate) of a file, checking it can be opened and is not empty."""
    with _open(path) as f:
        return f.frames, f.samplerate


def iter_mono_blocks(path: str | os.PathLike, sample_rate: int, *, block: int = BLOCK) -> Iterator[np.ndarray]:
    """Stream a file as mono float32 blocks at ``sample_rate``: memory stays bounded for any length.

    Channels are averaged. NaN or infinite samples become silence, with one AudioWarning per file.
    """
    warned = False
    with _open(path) as f:
        resampler = None if f.samplerate == sample_rate else soxr.ResampleStream(
            f.samplerate, sample_rate, 1, dtype="float32", quality="HQ"
        )
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioFileError(f"{path}: read failed ({exc})") from None
            last = data.shape[0] < block
            if not np.all(np.isfinite(data)):
                data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
                if not warned:
                    warnings.warn(f"{path}: NaN or infinite samples replaced by silence", AudioWarning, stacklevel=2)
                    warned = True
            mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if mono.size:
                yield np.ascontiguousarray(mono, dtype=np.float32)
            if last:
                break


def read_mono(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """A whole file as one mono float32 array at ``sample_rate``."""
    blocks = list(iter_mono_blocks(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expand_audio_paths(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given plus every audio file (by ending) found below given folders, sorted."""
    exts = audio_extensions()
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in exts)
            if not found:
                raise AudioFileError(f"{p}: folder holds no audio files")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise AudioFileError(f"{p}: no such file or folder")
    return out


def open_output(path: str | os.PathLike, sample_rate: int, channels: int = 1) -> sf.SoundFile:
    """An audio file open for writing as audio is made; the format follows the file ending."""
    p = Path(path)
    if not p.parent.exists():
        raise AudioFileError(f"{p}: folder {p.parent} does not exist")
    try:
        return sf.SoundFile(str(p), "w", samplerate=sample_rate, channels=channels)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as exc:
        raise AudioFileError(f"{p}: cannot write ({exc})") from None


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio (frames,) or (frames, channels) in one go."""
    a = np.asarray(audio, dtype=np.float32)
    with open_output(path, sample_rate, 1 if a.ndim == 1 else a.shape[1]) as f:
        f.write(a)
