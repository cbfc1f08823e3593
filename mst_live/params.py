"""Live parameters: thread-safe, bounded, and read once per block by the engine.

A MIDI thread or the screen may set them at any moment; the engine takes a snapshot per block
and ramps the audible ones (mix, level) across the block so that changes never click.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace

from .errors import ParameterError, check_int, check_range

# name: (low, high, default, help)
BOUNDS: dict[str, tuple[float, float, float, str]] = {
    "style_weight": (0.0, 100.0, 1.0, "style term weight; 0 gives the content alone, rebuilt"),
    "content_weight": (0.0, 100.0, 1e-2, "content term weight α"),
    "mix": (0.0, 1.0, 1.0, "dry/wet: 0 = the input, 1 = the styled signal"),
    "level": (-60.0, 12.0, 0.0, "output level in dB"),
    "steps": (0, 200, 12, "optimiser steps (loss evaluations) per block"),
    "bypass": (0, 1, 0, "1 passes the input through, delayed by the latency"),
    "morph": (0.0, 1.0, 0.0, "blend of the style toward --morph-preset: 0 = the preset, 1 = the morph preset"),
    "style_index": (0, 127, 0, "which of the presets given is the style (program change selects it)"),
}


@dataclass(frozen=True)
class ParamValues:
    style_weight: float = 1.0
    content_weight: float = 1e-2
    mix: float = 1.0
    level: float = 0.0
    steps: int = 12
    bypass: int = 0
    morph: float = 0.0
    style_index: int = 0

    @property
    def gain(self) -> float:
        return 10.0 ** (self.level / 20.0)


def validate(name: str, value: float) -> float | int:
    if name not in BOUNDS:
        raise ParameterError(f"unknown parameter {name!r} (known: {', '.join(BOUNDS)})")
    lo, hi, _, _ = BOUNDS[name]
    if name in ("steps", "bypass", "style_index"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return check_int(name, value, int(lo), int(hi))
    return check_range(name, value, lo, hi)


class LiveParams:
    """The current parameter values; `set` from any thread, `snapshot` from the engine."""

    def __init__(self, **initial: float) -> None:
        self._lock = threading.Lock()
        values = ParamValues()
        for name, value in initial.items():
            values = replace(values, **{name: validate(name, value)})
        self._values = values
        self._listeners: list = []

    def set(self, name: str, value: float) -> float | int:
        v = validate(name, value)
        with self._lock:
            self._values = replace(self._values, **{name: v})
            listeners = list(self._listeners)
        for fn in listeners:
            fn(name, v)
        return v

    def snapshot(self) -> ParamValues:
        with self._lock:  # held for one attribute read; never taken on the audio thread
            return self._values

    def on_change(self, fn) -> None:
        """Call ``fn(name, value)`` after every change (for events and the status display)."""
        with self._lock:
            self._listeners.append(fn)

    def as_dict(self) -> dict[str, float]:
        v = self.snapshot()
        return {f.name: getattr(v, f.name) for f in fields(v)}
