"""Latency modes: how the engine cuts the stream into blocks, and the analysis its presets need.

``normal`` is the full-size analysis and network (n_fft 2048, 4000 filters) in 7-frame blocks.
``low`` trades resolution for time: a 23 ms analysis window, a smaller network and 4-frame
blocks, so that what is played comes back in well under 200 ms. A preset holds the analysis
and network it was built with, so a mode can only run presets built for it; `check_preset`
refuses any other with one line that says how to get one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ParameterError, PresetError
from .preset import Preset, resolve_preset_path
from .settings import Settings


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
        return resolve_preset_path(name).exists()
    except PresetError:
        return False


def _analysis(s: Settings) -> tuple:
    return (s.sample_rate, s.n_fft, s.hop_length, s.n_filters, s.width)


MODES: dict[str, LatencyMode] = {
    # 8-frame blocks with 8 steps scored as 16-frame blocks with 12 on the quality measures (Gram
    # gap, correlation, chroma, onsets within 0.02 on three real-music pairs; one pair 0.09 better
    # on the Gram gap), at 301.8 ms of engine latency instead of 557. 1 overlap frame and a 1-frame
    # phase look-ahead scored as 2 and 3. One step costs about 10 ms and the rest of a block 4:
    # 130 ms leaves room for the 8 steps, and the deadline takes steps away first.
    # 7-frame blocks (7 + 1 frames and 8 repeats of the last: the same 16 feature columns per step)
    # kept the onsets 8 had lost when the loss padding was cut to fill one tile (folk pair 0.91
    # against 0.89; the others and the held-out Gram gap unchanged: 0.52/0.27/0.83/0.56 against
    # 0.52/0.27/0.82/0.57), at 23 ms less latency and 1/8 more blocks to compute per second.
    # Live they need the same 130 ms per block (0.8 of one) that 8-frame blocks had: side by side
    # through JACK at 1024-frame periods with the bench's hog, 0.7 of one (114 ms) gave 2.6 steps
    # per block and a style gap of 0.83, 0.8 gave 3.9 and 0.85 (8-frame blocks: 3.2-3.6, 0.84-0.86)
    "normal": LatencyMode("normal", Settings(), block_frames=7, overlap_frames=1, look_ahead=1, suffix="",
                          compute_blocks=0.8),
    # 4 frames of 128 are 23 ms. One block of compute gave 5-7 of 12 steps through JACK (per-block
    # overheads dominate at this size); two give the optimiser room for 12
    "low": LatencyMode("low", Settings(n_fft=512, hop_length=128, n_filters=1024, width=11), block_frames=4,
                       overlap_frames=2, look_ahead=2, suffix="-low", compute_blocks=2.0),
}


def latency_mode(name: str) -> LatencyMode:
    if name not in MODES:
        raise ParameterError(f"--latency {name!r} must be one of {', '.join(MODES)}")
    return MODES[name]
