"""Latency modes: how the engine cuts the stream into blocks, and the analysis its presets need.

``normal`` is the full-size analysis and network (n_fft 2048, 4000 filters) in 7-frame blocks.
``low`` trades resolution for time: a 23 ms analysis window, a smaller network and 4-frame
blocks, so that what is played comes back in well under 200 ms. A preset holds the analysis
and network it was built with, so a mode can only run presets built for it; `check_preset`
refuses any other with one line that says how to get one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ParameterError, PresetError
from .settings import Settings

if TYPE_CHECKING:  # preset.py loads torch: the modes are read by `--help` too
    from .preset import Preset


@dataclass(frozen=True)
class LatencyMode:
    name: str
    settings: Settings  # what a preset for this mode is built with
    block_frames: int
    overlap_frames: int
    look_ahead: int
    suffix: str  # shipped presets for this mode are NAME + suffix
    compute_blocks: float = 1.0  # live: time the worker is given per block, in blocks

    def build_flags(self) -> str:
        s = self.settings
        return f"--n-fft {s.n_fft} --hop {s.hop_length} --filters {s.n_filters} --width {s.width}"

    def check_preset(self, preset: Preset) -> None:
        """Refuse a preset built for another mode's analysis, with how to get one for this mode.
        The normal mode also runs presets of an analysis of their own (any --n-fft, --filters)."""
        got, want = preset.settings, self.settings
        if _analysis(got) == _analysis(want):
            return
        other = next((m for m in MODES.values() if m is not self and _analysis(m.settings) == _analysis(got)), None)
        if other is None and self.name == "normal":
            return
        name = preset.path.stem if preset.path else "the preset"
        if other is not None and other.suffix and name.endswith(other.suffix):
            name = name[: -len(other.suffix)]  # jazz-low -> jazz
        shipped = f"the shipped {name}{self.suffix}, or " if _shipped(name + self.suffix) else ""
        built = f"a --latency {other.name} preset" if other is not None else "built"
        raise PresetError(
            f"{preset.path or 'preset'}: {built} for n_fft {got.n_fft}, hop {got.hop_length}, {got.n_filters} filters, "
            f"width {got.width}; --latency {self.name} needs n_fft {want.n_fft}, hop {want.hop_length}, "
            f"{want.n_filters} filters, width {want.width}: use {shipped}rebuild it with "
            f"mst-live preset build STYLE... -o NAME{self.suffix}.npz {self.build_flags()}"
        )


def _shipped(name: str) -> bool:
    try:
        from .preset import resolve_preset_path

        return resolve_preset_path(name).exists()
    except PresetError:
        return False


def _analysis(s: Settings) -> tuple:
    return (s.sample_rate, s.n_fft, s.hop_length, s.n_filters, s.width)


MODES: dict[str, LatencyMode] = {
    # 7 + 1 frames and the loss's repeats of the last fill one 16-column tile of the network; the
    # worker gets 0.8 of a block (130 ms) to compute one live (docs/design-notes.md has the
    # measurements behind both)
    "normal": LatencyMode("normal", Settings(), block_frames=7, overlap_frames=1, look_ahead=1, suffix="",
                          compute_blocks=0.8),
    # 4 frames of 128 are 23 ms, where per-block overheads dominate: two blocks of compute time
    "low": LatencyMode("low", Settings(n_fft=512, hop_length=128, n_filters=1024, width=11), block_frames=4,
                       overlap_frames=2, look_ahead=2, suffix="-low", compute_blocks=2.0),
}


def latency_mode(name: str) -> LatencyMode:
    if name not in MODES:
        raise ParameterError(f"--latency {name!r} must be one of {', '.join(MODES)}")
    return MODES[name]
