"""One error family, so the command line can turn any of them into a single clear line."""

from __future__ import annotations


class MstError(Exception):
    """Base of every error mst-live raises on purpose (bad input, not a bug)."""


class ParameterError(MstError, ValueError):
    """A parameter is out of range or of the wrong kind; the message names it and its value."""


class PresetError(MstError):
    """A preset file is unreadable, malformed, or does not match the network that would use it."""


class AudioFileError(MstError):
    """An audio file is missing, unreadable, empty, or cannot be written."""


class AudioWarning(UserWarning):
    """Audio was usable only after a repair (NaN samples silenced); the command goes on."""


def check_range(name: str, value: float, lo: float, hi: float) -> float:
    """Return ``value`` as float, or raise a ParameterError naming the allowed range."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} is not a number") from None
    if not (lo <= v <= hi):
        raise ParameterError(f"{name}={value!r} is out of range [{lo:g}, {hi:g}]")
    return v


def check_int(name: str, value: int, lo: int, hi: int | None = None) -> int:
    """Return ``value`` as int, or raise a ParameterError naming the allowed range."""
    if isinstance(value, bool) or (not isinstance(value, (int,)) and not (
        hasattr(value, "__index__")
    )):
        raise ParameterError(f"{name}={value!r} is not a whole number")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        allowed = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ParameterError(f"{name}={value!r} is out of range {allowed}")
    return v
