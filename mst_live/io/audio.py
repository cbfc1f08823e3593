"""Audio devices: preallocated ring buffers the callback copies through, and device lookup.

The callback side of `Ring` only copies between preallocated arrays and moves two integer
indices: no allocation of buffers, no locks, no logging, no files. One thread writes, one reads.
"""

from __future__ import annotations

import numpy as np

from ..errors import MstError


class DeviceError(MstError):
    """No such device, or a device failed or vanished."""


class Ring:
    """Single-producer single-consumer ring of float32 frames (mono, or ``channels`` wide)."""

    def __init__(self, capacity: int, *, channels: int = 1) -> None:
        self._buf = np.zeros(capacity if channels == 1 else (capacity, channels), dtype=np.float32)
        self._cap = capacity
        self._w = 0  # total written
        self._r = 0  # total read

    @property
    def channels(self) -> int:
        return 1 if self._buf.ndim == 1 else self._buf.shape[1]

    def available(self) -> int:
        return self._w - self._r

    def space(self) -> int:
        return self._cap - (self._w - self._r)

    def write(self, x: np.ndarray) -> int:
        """Copy in as much of x as fits; returns how many frames did."""
        n = min(x.shape[0], self.space())
        _put(self._buf, self._w, x[:n])
        self._w += n
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Copy up to len(out) frames out; returns how many there were."""
        n = min(out.shape[0], self.available())
        _get(self._buf, self._r, out[:n])
        self._r += n
        return n


def _put(buf: np.ndarray, at: int, x: np.ndarray) -> None:
    """Copy x into the circular buffer from absolute position ``at``, wrapping at its end."""
    cap = buf.shape[0]
    n = x.shape[0]
    i = at % cap
    k = min(n, cap - i)
    buf[i : i + k] = x[:k]
    if n > k:
        buf[: n - k] = x[k:n]


def _get(buf: np.ndarray, at: int, out: np.ndarray) -> None:
    """Copy len(out) frames out of the circular buffer from absolute position ``at``."""
    cap = buf.shape[0]
    n = out.shape[0]
    i = at % cap
    k = min(n, cap - i)
    out[:k] = buf[i : i + k]
    if n > k:
        out[k:n] = buf[: n - k]


class History:
    """The last ``capacity`` samples written, for reading back a fixed delay later (the dry
    signal an underrun cross-fades to). Copies only, like `Ring`."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._cap = capacity
        self._w = 0

    def write(self, x: np.ndarray) -> None:
        """Keep x as the newest samples (only the last ``capacity`` are kept)."""
        x = x[-self._cap :]
        _put(self._buf, self._w, x)
        self._w += x.shape[0]

    def read_delayed(self, out: np.ndarray, delay: int) -> None:
        """The len(out) samples that ended ``delay`` samples before the newest; zeros before the start."""
        n = out.shape[0]
        start = self._w - delay - n
        out[:] = 0.0
        lo = max(start, 0, self._w - self._cap)
        if lo < start + n:
            _get(self._buf, lo, out[lo - start :])


def _sd():
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise DeviceError(f"audio devices unavailable: {exc} (install libportaudio2)") from None
    return sd


def list_devices() -> str:
    sd = _sd()
    apis = sd.query_hostapis()
    lines = []
    try:
        default_in, default_out = sd.default.device
    except Exception:
        default_in = default_out = -1
    for i, d in enumerate(sd.query_devices()):
        mark = ("<" if i == default_in else " ") + (">" if i == default_out else " ")
        lines.append(f"{mark} {i:3d}  {d['name']}  ({apis[d['hostapi']]['name']}; "
                     f"{d['max_input_channels']} in, {d['max_output_channels']} out; {d['default_samplerate']:.0f} Hz)")
    if not lines:
        return "no audio devices found"
    return "\n".join(lines) + "\n(< default input, > default output)"


def find_device(spec: str | None, kind: str) -> int:
    """A device index from 'mic'/'default'/None, an index, or a name substring."""
    sd = _sd()
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    devices = sd.query_devices()
    usable = [i for i, d in enumerate(devices) if d[key] > 0]
    if not usable:
        raise DeviceError(f"no audio {kind} device found (mst-live devices lists them)")
    if spec in (None, "mic", "default"):
        try:
            idx = sd.default.device[0 if kind == "input" else 1]
        except Exception:
            idx = -1
        if idx is None or idx < 0:
            idx = usable[0]
        return int(idx)
    if spec.isdigit():
        idx = int(spec)
        if idx not in usable:
            raise DeviceError(f"device {idx} is not an audio {kind} device (mst-live devices lists them)")
        return idx
    matches = [i for i in usable if spec.lower() in devices[i]["name"].lower()]
    if not matches:
        names = ", ".join(f"{i}: {devices[i]['name']}" for i in usable)
        raise DeviceError(f"no {kind} device matches {spec!r} (there are: {names})")
    return matches[0]
