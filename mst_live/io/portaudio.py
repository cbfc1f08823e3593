"""The one place mst-live reaches past sounddevice's public API.

The device callback is machine code (io.device_callback) that PortAudio calls directly, with the
live runner's shared memory as its user data. sounddevice's public streams wrap every callback in
Python; its private ``_StreamBase`` takes a C function pointer as it is, and its ``_ffi`` turns an
address into the ``void *`` user data. Both are internals, so the versions they were checked
with are named here, and any other version is refused with one line instead of failing deep
inside a live run.
"""

from __future__ import annotations

from typing import Any

from .audio import DeviceError, _sd

CHECKED = ((0, 4, 6), (0, 6, 0))  # sounddevice versions from the first up to (not including) the second


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_sounddevice(sd: Any = None) -> Any:
    """sounddevice, if it has the internals mst-live uses at a version they were checked with;
    otherwise one DeviceError that says which versions to install."""
    sd = sd or _sd()
    have = _version(getattr(sd, "__version__", "0"))
    lo, hi = CHECKED
    wanted = f"sounddevice>={'.'.join(map(str, lo))},<{'.'.join(map(str, hi))}"
    if not lo <= have < hi or not hasattr(sd, "_StreamBase") or not hasattr(sd, "_ffi"):
        raise DeviceError(f"sounddevice {getattr(sd, '__version__', '?')} is not a version mst-live's compiled device "
                          f"callback was checked with (it uses sounddevice's private stream class): pip install '{wanted}'")
    return sd


def raw_stream(kind: str, *, channels: Any, device: Any, samplerate: int, blocksize: int, callback: Any,
               user_data: int) -> Any:
    """A float32 PortAudio stream ('input', 'output' or 'duplex') whose callback is the C function
    ``callback``, called with ``user_data`` (an address) as its user data."""
    sd = check_sounddevice()
    return sd._StreamBase(kind, channels=channels, device=device, samplerate=samplerate, dtype="float32",
                          blocksize=blocksize, callback=callback, userdata=sd._ffi.cast("void *", user_data))
