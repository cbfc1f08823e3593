"""What the styled signal passes through on its way out: level following, bypass, mix, level, limiter.

Each stage has the plugin shape (process / reset / latency) and is testable alone. The stages
that blend the styled (wet) signal with the input (dry) take both; parameter changes glide over
10 ms (`Smoother`), so a knob or a MIDI button never clicks. None of them delays the audio.
"""

from __future__ import annotations

import numpy as np

from .level import LevelFollower, Smoother
from .limiter import PeakLimiter


class Follow:
    """The wet signal follows the dry input's dynamics, by ``amount`` (0 off, 1 fully); see
    `LevelFollower`. As the style's own sound takes over (``share`` 0..1) the follower steps aside,
    since that sound brings its own course through each note; the change glides over 100 ms. It keeps
    listening at every amount and while bypassed, so it is current when it is needed again."""

    latency = 0
    GLIDE_MS = 100.0

    def __init__(self, sample_rate: int, amount: float) -> None:
        self.amount = float(amount)
        self._rate = sample_rate
        self._follower = LevelFollower(sample_rate)
        self.reset()

    def reset(self) -> None:
        self._follower.reset()
        self._glide = Smoother(self._rate, self.amount, time_ms=self.GLIDE_MS)

    def process(self, wet: np.ndarray, dry: np.ndarray, *, share: float = 0.0) -> np.ndarray:
        amounts = self._glide.ramp(self.amount * (1.0 - min(max(float(share), 0.0), 1.0)), wet.size)
        return self._follower.process(wet, dry, amounts)


class _Gliding:
    """A stage whose parameter glides to each new value over 10 ms."""

    latency = 0

    def __init__(self, sample_rate: int, value: float) -> None:
        self._rate = sample_rate
        self.reset(value)

    def reset(self, value: float | None = None) -> None:
        """Forget any glide; start at ``value`` (by default where it started before)."""
        self._start = self._start if value is None else float(value)
        self._glide = Smoother(self._rate, self._start)

    def _ramp(self, value: float, n: int) -> np.ndarray:
        return self._glide.ramp(float(value), n)


class Blend(_Gliding):
    """``value`` of one signal and the rest of the other: the bypass (1 = the dry input) and the
    dry/wet mix (1 = the wet signal) are both this."""

    def process(self, a: np.ndarray, b: np.ndarray, *, value: float) -> np.ndarray:
        """``value`` of ``a`` and ``1 - value`` of ``b``."""
        v = self._ramp(value, a.size)
        return v * a + (1.0 - v) * b


class Level(_Gliding):
    """A linear gain."""

    def process(self, x: np.ndarray, *, gain: float) -> np.ndarray:
        return x * self._ramp(gain, x.size)


class OutputChain:
    """follow -> bypass -> mix -> level -> peak limiter, at the parameters of each call."""

    latency = 0

    def __init__(self, sample_rate: int, *, follow: float, mix: float, gain: float, bypass: float) -> None:
        self.follow = Follow(sample_rate, follow)
        self.bypass = Blend(sample_rate, bypass)
        self.mix = Blend(sample_rate, mix)
        self.level = Level(sample_rate, gain)
        self.limiter = PeakLimiter(sample_rate)

    def reset(self, *, mix: float | None = None, gain: float | None = None, bypass: float | None = None) -> None:
        """Forget all state; the glides start at the values given (by default where they started)."""
        self.follow.reset()
        self.bypass.reset(bypass)
        self.mix.reset(mix)
        self.level.reset(gain)
        self.limiter.reset()

    def process(self, wet: np.ndarray, dry: np.ndarray, *, mix: float, gain: float, bypass: float,
                share: float = 0.0) -> np.ndarray:
        """``share``: how much of the wet signal is the style's own sound (`Follow`)."""
        wet = self.follow.process(wet, dry, share=share)
        wet = self.bypass.process(dry, wet, value=bypass)
        out = self.level.process(self.mix.process(wet, dry, value=mix), gain=gain)
        return self.limiter.process(out.astype(np.float32))
