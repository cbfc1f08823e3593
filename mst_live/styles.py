"""The styles a running engine can take: the presets program change chooses from, and the morph preset."""

from __future__ import annotations

import numpy as np
import torch

from .features import FeatureNet
from .losses import StyleTarget
from .palette import Palette, geometric_blend
from .params import ParamValues
from .preset import Preset


class Styles:
    """presets[params.style_index] (the last one past the end), blended toward ``morph`` by
    params.morph. All share the network, so every one is checked against it."""

    def __init__(self, presets: list[Preset], morph: Preset | None, *, net: FeatureNet) -> None:
        self.presets, self.morph = presets, morph
        self._all = [*presets, *([morph] if morph else [])]
        for p in self._all:
            p.check_network(net.settings, net.checksum)
        self._targets = [p.style_target(device=net.device, dtype=torch.float32) for p in presets]
        self._morph = morph.style_target(device=net.device, dtype=torch.float32) if morph else None
        self._cross = [float(((t.factor.T @ self._morph.factor) ** 2).sum()) if self._morph is not None else 0.0
                       for t in self._targets]
        s = net.settings
        self._palettes = [Palette(p.palette, s, ages=p.palette_age, levels=p.palette_level) if p.palette is not None
                          else None for p in presets]
        self._morph_palette = (Palette(morph.palette, s, ages=morph.palette_age, levels=morph.palette_level)
                               if morph is not None and morph.palette is not None else None)

    def without_palette(self) -> list[Preset]:
        """The presets (and the morph preset) that have no palette of their own sound."""
        return [p for p in self._all if p.palette is None]

    def index(self, p: ParamValues) -> int:
        return min(p.style_index, len(self.presets) - 1)

    def target(self, p: ParamValues) -> StyleTarget:
        """The style Gram target for these parameter values."""
        i = self.index(p)
        t = self._targets[i]
        if self._morph is not None and p.morph > 0:
            t = t.blend(self._morph, p.morph, self._cross[i])
        return t

    def bin_stats(self, p: ParamValues) -> tuple[np.ndarray, np.ndarray]:
        """Each bin's log-magnitude mean and spread for the first stage, morphed like the target."""
        st = self.presets[self.index(p)]
        mean, std = st.bin_mean, st.bin_std
        if self.morph is not None and p.morph > 0:
            m = p.morph
            mean = (1 - m) * mean + m * self.morph.bin_mean
            std = (1 - m) * std + m * self.morph.bin_std
        return mean, std

    def envelope_depth(self, p: ParamValues) -> np.ndarray | None:
        """How far under its frame's peak the style keeps each bin (dB, `dsp.envelope.envelope_ceiling`),
        morphed linearly; None where the chosen preset has no palette (no ceiling but the bound)."""
        own = self._palettes[self.index(p)]
        if own is None:
            return None
        depth = own.depth_db
        if self._morph_palette is not None and p.morph > 0:
            depth = (1 - p.morph) * depth + p.morph * self._morph_palette.depth_db
        return depth

    def sound(self, magnitude: np.ndarray, p: ParamValues, *, ages: np.ndarray | None = None,
              levels: np.ndarray | None = None, amplitudes: torch.Tensor | None = None) -> np.ndarray | None:
        """The style's own frames for the frames played (magnitudes, bins x n, each ``ages`` frames
        into its note, ``levels`` dB under its loudest), morphed in log-magnitude like the target;
        None where the chosen preset has no palette. ``amplitudes``: the frames'
        `dsp.semitones.semitone_amplitudes`."""
        own = self._palettes[self.index(p)]
        if own is None:
            return None
        out = own.match(magnitude, ages=ages, levels=levels, amplitudes=amplitudes)
        if self._morph_palette is not None and p.morph > 0:
            other = self._morph_palette.match(magnitude, ages=ages, levels=levels, amplitudes=amplitudes)
            out = geometric_blend(out, other, p.morph)
        return out
