"""Analysis and network settings: the numbers that define the sound and must match a preset."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ParameterError, check_int

# the random network's kind: "structured" (sign flips between Walsh–Hadamard transforms, nothing
# stored; structured.py) or "dense" (Gaussian weights, the original algorithm; features.py)
NETWORKS = ("structured", "dense")
# what the dense network's weights are stored as (compute.py); the arithmetic is float32 but in bfloat16
PRECISIONS = ("auto", "bfloat16", "float16", "int8", "float32")


@dataclass(frozen=True)
class Settings:
    """Everything that determines the spectrogram and the random feature network.

    Two settings objects that compare equal produce bit-identical network weights, which is
    what lets a preset built on one machine drive the engine on another.
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_filters: int = 4000
    width: int = 11
    seed: int = 0
    network: str = "structured"

    def __post_init__(self) -> None:
        check_int("sample_rate", self.sample_rate, 1000, 384000)
        check_int("n_fft", self.n_fft, 16, 1 << 16)
        if self.n_fft % 2:
            raise ParameterError(f"n_fft={self.n_fft} must be even")
        check_int("hop_length", self.hop_length, 1, self.n_fft // 2)
        check_int("n_filters", self.n_filters, 1, 65536)
        check_int("width", self.width, 1, 1024)
        check_int("seed", self.seed, 0, 2**63 - 1)
        if self.network not in NETWORKS:
            raise ParameterError(f"network={self.network!r} is not one of {', '.join(NETWORKS)}")

    @property
    def frame_rate(self) -> float:
        """STFT frames a second."""
        return self.sample_rate / self.hop_length

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def sigma(self) -> float:
        """He-style scale from Ulyanov & Lebedev: sqrt(2) * sqrt(2 / ((bins + filters) * width))."""
        return math.sqrt(2.0) * math.sqrt(2.0 / ((self.n_bins + self.n_filters) * self.width))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Build from untrusted data: unknown or missing keys and wrong types are errors."""
        if not isinstance(data, dict):
            raise ParameterError("settings must be a mapping")
        data = dict(data)
        # presets of formats up to 6 name the window, which is always Hann
        if data.pop("window", "hann") != "hann":
            raise ParameterError("settings: the window is always 'hann'")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown:
            raise ParameterError(f"unknown settings: {', '.join(unknown)}")
        if missing:
            raise ParameterError(f"missing settings: {', '.join(missing)}")
        for f in fields(cls):
            want = str if f.name == "network" else int
            value = data[f.name]
            if isinstance(value, bool) or not isinstance(value, want):
                raise ParameterError(f"setting {f.name}={value!r} is not a{'n int' if want is int else ' str'}")
        return cls(**data)

    def describe(self) -> str:
        return (
            f"{self.sample_rate} Hz, n_fft {self.n_fft}, hop {self.hop_length}, Hann window, "
            f"{self.n_filters} filters x width {self.width}, seed {self.seed}, {self.network} network"
        )
