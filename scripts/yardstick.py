"""The benchmarks' and tests' yardstick: style and content measured with a network that is NOT
the one optimised.

Judging output with the loss that produced it flatters it; a held-out random network (other
seed, filter count and width) tells whether the statistics really moved toward the style.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from mst_live.dsp.stft import stft
from mst_live.features import FeatureNet, log_magnitude
from mst_live.losses import gram
from mst_live.settings import Settings


def yardstick_settings(settings: Settings) -> Settings:
    """Same analysis, different network: another seed, ~3/4 of the filters, a different width, and
    Gaussian (dense) weights whatever the engine's network, so that the structured network is
    judged on weights of another kind and every figure stays comparable with the dense era's."""
    return replace(
        settings,
        seed=settings.seed + 104729,
        n_filters=max(8, (settings.n_filters * 3) // 4),
        width=settings.width + 4 if settings.width < 9 else settings.width - 4,
        network="dense",
    )


def network_features(audio: np.ndarray, net: FeatureNet) -> torch.Tensor:
    """The features (float64) a network gives a signal, from its own analysis settings."""
    s = net.settings
    mag = np.abs(stft(np.asarray(audio, dtype=np.float32), n_fft=s.n_fft, hop_length=s.hop_length))
    with torch.no_grad():
        return net(torch.from_numpy(log_magnitude(mag))).double()


class Yardstick:
    def __init__(self, settings: Settings) -> None:
        self.settings = yardstick_settings(settings)
        self.net = FeatureNet(self.settings)

    def features(self, audio: np.ndarray) -> torch.Tensor:
        return network_features(audio, self.net)

    def gram(self, audio: np.ndarray) -> torch.Tensor:
        return gram(self.features(audio))

    def style_gap_closed(self, out: np.ndarray, content: np.ndarray, style_gram: torch.Tensor) -> float:
        """1 − ‖G(out) − G(style)‖ / ‖G(content) − G(style)‖."""
        g_out, g_c = self.gram(out), self.gram(content)
        return float(1.0 - torch.linalg.norm(g_out - style_gram) / torch.linalg.norm(g_c - style_gram))

    def content_distance(self, out: np.ndarray, content: np.ndarray) -> float:
        """‖F(out) − F(content)‖ / ‖F(content)‖ over the frames both have."""
        f_o, f_c = self.features(out), self.features(content)
        n = min(f_o.shape[1], f_c.shape[1])
        return float(torch.linalg.norm(f_o[:, :n] - f_c[:, :n]) / torch.linalg.norm(f_c[:, :n]))
