"""Live parameters: thread-safe, bounded, and read once per block by the engine.

A MIDI thread or the screen may set them at any moment; the engine takes a snapshot per block
and ramps the audible ones (mix, level, bypass) so that changes never click.

`PARAMS` is the one table of them. The CLI options, the MIDI mapping's ranges and curves, the
values' types and the README's parameter table all derive from it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields, make_dataclass, replace

from .errors import ParameterError, check_int, check_range


@dataclass(frozen=True)
class Param:
    """One live parameter: its range, default, kind and what it does."""

    name: str
    lo: float
    hi: float
    default: float
    kind: str  # "float", "int" or "flag"
    help: str
    midi_curve: str = "linear"  # the curve `midi learn` gives a control mapped to it
    cli: bool = True  # has a command-line option (style_index is chosen by program change)
    learn: bool = True  # offered by `mst-live midi learn`

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


PARAMS: dict[str, Param] = {p.name: p for p in (
    # up to palette.FULL_AT: there the style's own sound has its largest share, and nothing moves above it
    Param("style_weight", 0.0, 10.0, 1.0, "float", "the style knob: 0 is the input, rebuilt exactly; up to 1 the "
          "style's balance and texture come in; from 1 to 10 the style's own sound takes over the notes played",
          midi_curve="log"),
    Param("mix", 0.0, 1.0, 1.0, "float", "dry/wet: 0 = the input, 1 = the styled signal"),
    Param("level", -60.0, 12.0, 0.0, "float", "output level in dB"),
    Param("content_weight", 0.0, 100.0, 1e-2, "float", "weight of the content term α", midi_curve="log"),
    Param("pitch_weight", 0.0, 1e4, 1e3, "float", "weight of the pitch term: keeps the pitch classes of what is "
          "played; 0 lets the style move them", midi_curve="log"),
    Param("attack_weight", 0.0, 100.0, 1.0, "float", "weight of the attack term: keeps the attacks as they are "
          "played; 0 lets the style's swells sound as attacks of their own", midi_curve="log"),
    Param("morph", 0.0, 1.0, 0.0, "float", "blend toward --morph-preset: 0 = the preset, 1 = the morph preset"),
    Param("steps", 0, 200, 8, "int", "optimiser steps (loss evaluations) per block; live, fewer if the deadline needs it"),
    Param("max_change", 0.5, 48.0, 12.0, "float", "how far the first stage may raise or lower any frequency band, "
          "and the optimiser then move it again; "
          "less is cleaner, more moves more style"),
    Param("bypass", 0, 1, 0, "flag", "the input passes through, delayed by the latency (glides, no click)", learn=False),
    Param("style_index", 0, 127, 0, "int", "which of the presets given is the style (program change selects it)",
          cli=False, learn=False),
)}

# the values the engine reads per block: a frozen dataclass with one field per parameter
_Values = make_dataclass(
    "_Values",
    [(p.name, float if p.kind == "float" else int, p.default) for p in PARAMS.values()],
    frozen=True,
)


class ParamValues(_Values):  # type: ignore[misc, valid-type]
    """A snapshot of every live parameter."""

    @property
    def gain(self) -> float:
        return 10.0 ** (self.level / 20.0)


def validate(name: str, value: float) -> float | int:
    """``value`` checked against the table, as the parameter's type; ParameterError otherwise."""
    p = PARAMS.get(name)
    if p is None:
        raise ParameterError(f"unknown parameter {name!r} (known: {', '.join(PARAMS)})")
    if p.kind == "float":
        return check_range(name, value, p.lo, p.hi)  # NaN is in no range: refused too
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check_int(name, value, int(p.lo), int(p.hi))


def markdown_table() -> str:
    """The README's table of live parameters (a test keeps the README equal to it)."""
    rows = ["| option | range | default | what it does |", "| --- | --- | --- | --- |"]
    for p in PARAMS.values():
        if not p.cli:
            continue
        if p.kind == "flag":
            rng, default = "flag", "off"
        else:
            unit = " dB" if p.name in ("level", "max_change") else ""
            rng, default = f"{p.lo:g}–{p.hi:g}{unit}", f"{p.default:g}"
        rows.append(f"| `{p.flag}` | {rng} | {default} | {p.help} |")
    return "\n".join(rows)


class LiveParams:
    """The current parameter values; `set` from any thread, `snapshot` from the engine."""

    def __init__(self, **initial: float) -> None:
        self._lock = threading.Lock()
        values = ParamValues()
        for name, value in initial.items():
            values = replace(values, **{name: validate(name, value)})
        self._values = values
        self._listeners: list[Callable[[str, float | int], None]] = []

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

    def on_change(self, fn: Callable[[str, float | int], None]) -> None:
        """Call ``fn(name, value)`` after every change (for events and the status display)."""
        with self._lock:
            self._listeners.append(fn)

    def as_dict(self) -> dict[str, float]:
        v = self.snapshot()
        return {f.name: getattr(v, f.name) for f in fields(v)}
