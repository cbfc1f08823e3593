"""A growable first-in first-out sample queue for the engine's worker side (not the callback)."""

from __future__ import annotations

import numpy as np


class SampleFifo:
    def __init__(self, dtype: type = np.float32) -> None:
        self._buf = np.zeros(1 << 14, dtype=dtype)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def clear(self) -> None:
        self._start = self._end = 0

    def push(self, x: np.ndarray) -> None:
        n = x.size
        if self._end + n > self._buf.size:
            live = self._buf[self._start : self._end]
            size = max(self._buf.size, 2 * (live.size + n))
            buf = np.zeros(size, dtype=self._buf.dtype) if size > self._buf.size else self._buf
            buf[: live.size] = live.copy()
            self._buf, self._start, self._end = buf, 0, live.size
        self._buf[self._end : self._end + n] = x
        self._end += n

    def push_zeros(self, n: int) -> None:
        self.push(np.zeros(n, dtype=self._buf.dtype))

    def pop(self, n: int) -> np.ndarray:
        """Up to n samples (fewer only if fewer are queued)."""
        k = min(n, len(self))
        out = self._buf[self._start : self._start + k].copy()
        self._start += k
        if self._start == self._end:
            self._start = self._end = 0
        return out


class FrameQueue:
    """STFT frames waiting to be processed in blocks. A block may leave its last frames queued,
    to be processed again with the next one (the overlap)."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def push(self, frames: np.ndarray) -> None:
        if frames.shape[1]:
            self._parts.append(frames)
            self._n += frames.shape[1]

    def take(self, n: int, *, keep: int = 0) -> np.ndarray:
        """The first n frames; the last ``keep`` of them stay queued."""
        allf = np.concatenate(self._parts, axis=1) if len(self._parts) > 1 else self._parts[0]
        block, rest = allf[:, :n], allf[:, n - keep :]
        self._parts = [rest] if rest.shape[1] else []
        self._n = rest.shape[1]
        return block
