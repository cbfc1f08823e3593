"""Audio devices: preallocated ring buffers the callback copies through, and device lookup.

`Ring` only copies between preallocated arrays and moves two integer indices: no allocation of
buffers, no locks, no logging, no files. One thread writes, one reads.
"""

from __future__ import annotations

import numpy as np

from ..errors import MstError


class DeviceError(MstError):
    """No such device, or a device failed or vanished."""


class Ring:
    """Single-producer single-consumer ring of float32 frames (mono, or ``channels`` wide).

    ``buf`` and ``index`` (two int64 slots: total written, total read) may be given as views of
    memory a compiled callback shares (`device_callback.CallbackState`); each side moves only
    its own index, after its copy."""

    def __init__(self, capacity: int, *, channels: int = 1, buf: np.ndarray | None = None,
                 index: np.ndarray | None = None) -> None:
        shape = capacity if channels == 1 else (capacity, channels)
        self._buf = np.zeros(shape, dtype=np.float32) if buf is None else buf.reshape(shape)
        self._cap = capacity
        self._i = np.zeros(2, np.int64) if index is None else index

    @property
    def channels(self) -> int:
        return 1 if self._buf.ndim == 1 else self._buf.shape[1]

    def available(self) -> int:
        return int(self._i[0] - self._i[1])

    def space(self) -> int:
        return self._cap - self.available()

    def write(self, x: np.ndarray) -> int:
        """Copy in as much of x as fits; returns how many frames did."""
        n = min(x.shape[0], self.space())
        _put(self._buf, int(self._i[0]), x[:n])
        self._i[0] += n
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Copy up to len(out) frames out; returns how many there were."""
        n = min(out.shape[0], self.available())
        _get(self._buf, int(self._i[1]), out[:n])
        self._i[1] += n
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
