"""Checking paths before any work starts, and telling a file from a device.

Every command checks each path it will write before it reads, builds or computes anything, so
a typo costs a second, not a finished render. Each failure is one ParameterError naming the
option and the path.
"""

from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from ..errors import ParameterError
from .files import audio_extensions

# endings soundfile writes by their name alone (the format follows the ending)
_WRITABLE = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".au", ".caf", ".w64", ".rf64")


def writable_audio_endings() -> tuple[str, ...]:
    formats = {k.lower() for k in sf.available_formats()}
    return tuple(e for e in _WRITABLE if e[1:] in formats)


def check_writable(path: str | os.PathLike, *, option: str) -> Path:
    """Refuse an output path that cannot be written; an existing file is left as it is.

    The check creates (and removes) or opens for appending the file itself: os.access says
    yes to root even where the file system says no.
    """
    p = Path(path)
    if p.is_dir():
        raise ParameterError(f"{option} {p}: is a folder, not a file")
    parent = p.parent
    if not parent.exists():
        raise ParameterError(f"{option} {p}: folder {parent} does not exist")
    if not parent.is_dir():
        raise ParameterError(f"{option} {p}: {parent} is not a folder")
    existed = p.exists()
    flags = os.O_WRONLY | os.O_APPEND | (0 if existed else os.O_CREAT | os.O_EXCL)
    try:
        os.close(os.open(p, flags, 0o644))
    except OSError as exc:
        raise ParameterError(f"{option} {p}: cannot write there ({exc.strerror})") from None
    if not existed:
        p.unlink()
    return p


def check_audio_output(path: str | os.PathLike, *, option: str) -> Path:
    """A writable path whose ending names an audio format soundfile writes."""
    p = Path(path)
    endings = writable_audio_endings()
    if p.suffix.lower() not in endings:
        what = f"unknown audio format {p.suffix!r}" if p.suffix else "no file ending"
        raise ParameterError(f"{option} {p}: {what} (use {', '.join(endings)})")
    return check_writable(p, option=option)


def check_ending(path: str | os.PathLike, ending: str, *, option: str) -> Path:
    """A writable path with the given ending (.npz, .png, .toml)."""
    p = Path(path)
    if p.suffix.lower() != ending:
        raise ParameterError(f"{option} {p}: the file must end in {ending}")
    return check_writable(p, option=option)


def is_file_spec(spec: str | None, *, output: bool = False) -> bool:
    """Whether ``--input``/``--output`` names a file rather than a device.

    ``mic``, ``default`` and plain numbers are always devices (a file called 2 is ``./2``).
    A known audio ending or a path separator makes a file; for an input, so does an existing
    file. Anything else is a device name (substring). An output with a letters-only ending
    that no audio format has is refused, not looked for among the devices.
    """
    if spec is None or spec in ("mic", "default") or spec.strip().isdigit():
        return False
    p = Path(spec)
    if p.suffix.lower() in audio_extensions() or os.sep in spec or "/" in spec:
        return True
    if not output:
        return p.is_file()
    if p.suffix[1:].isalpha() and " " not in spec:
        raise ParameterError(f"--output {spec}: unknown audio format {p.suffix!r} "
                             f"(use {', '.join(writable_audio_endings())}, or a device name)")
    return False
