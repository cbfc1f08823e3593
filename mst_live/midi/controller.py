"""Reading a MIDI controller off the audio thread and turning it into parameter changes.

mido's rtmidi backend calls `_on_message` on its own thread. That only records the newest
value for each parameter. A separate thread applies them at most every 5 ms, so a flood of
thousands of messages a second costs a dictionary write each and never stalls anything.
Sysex, clock, notes and anything else unmapped are dropped on arrival.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from contextlib import contextmanager

from ..errors import MstError
from ..params import LiveParams
from .mapping import Mapping


class MidiError(MstError):
    """No such MIDI port, or MIDI unavailable."""


def _mido():
    try:
        import mido
    except ImportError as exc:
        raise MidiError(f"MIDI unavailable: {exc}") from None
    backend = os.environ.get("MIDO_BACKEND")
    if backend:
        mido.set_backend(backend)
    return mido


@contextmanager
def _c_stderr_silenced():
    """ALSA and JACK print lines of their own from C when no sequencer or server answers; the
    error raised after says the same in one line."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def input_names() -> list[str]:
    mido = _mido()
    try:
        with _c_stderr_silenced():
            return list(mido.get_input_names())
    except Exception as exc:  # the backend failed to start (no ALSA/JACK)
        raise MidiError(f"MIDI unavailable: {exc}") from None


def find_port(spec: str) -> str:
    """The first MIDI input port whose name contains ``spec``; MidiError naming ``spec`` otherwise."""
    try:
        names = input_names()
    except MidiError as exc:
        raise MidiError(f"MIDI port {spec!r}: {exc}") from None
    matches = [n for n in names if spec.lower() in n.lower()]
    if not matches:
        listing = ", ".join(names) if names else "none"
        raise MidiError(f"no MIDI input port matches {spec!r} (ports: {listing})")
    return matches[0]


def learn(port: str, params: list[str], *, ask, timeout: float = 30.0, skip=None) -> list[tuple[str, int, int]]:
    """For each parameter in turn, wait for a control to move: [(param, channel, cc)].

    ``ask(param)`` tells the person what to move; a parameter nobody touches within
    ``timeout`` seconds, or for which ``skip()`` answers True, is skipped.
    """
    mido = _mido()
    name = find_port(port)
    found = []
    with mido.open_input(name) as inp:
        for param in params:
            ask(param)
            for _ in inp.iter_pending():  # forget what arrived before the question
                pass
            t0 = time.monotonic()
            while time.monotonic() - t0 < timeout and not (skip is not None and skip()):
                msg = inp.poll()
                if msg is None:
                    time.sleep(0.005)
                    continue
                if msg.type == "control_change":
                    found.append((param, msg.channel, msg.control))
                    # let the knob settle so that one movement is not taken for the next parameter
                    settle = time.monotonic()
                    while time.monotonic() - settle < 0.4:
                        if inp.poll() is not None:
                            settle = time.monotonic()
                        time.sleep(0.005)
                    break
    return found


class MidiController:
    def __init__(self, port: str, mapping: Mapping, params: LiveParams, *, n_presets: int = 1) -> None:
        self.mapping = mapping
        self.params = params
        self.n_presets = n_presets
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()  # between the MIDI thread and the apply thread only
        self._stop = threading.Event()
        self._apply = threading.Thread(target=self._apply_loop, daemon=True)
        mido = _mido()
        name = find_port(port)
        try:
            self._port = mido.open_input(name, callback=self._on_message)
        except Exception as exc:
            raise MidiError(f"cannot open MIDI port {name!r}: {exc}") from None
        self.port_name = name
        self._apply.start()

    def _on_message(self, msg) -> None:
        kind = getattr(msg, "type", None)
        if kind == "control_change":
            rules = self.mapping.lookup(msg.channel, msg.control)
            with self._lock:
                for rule in rules:
                    self._pending[rule.param] = rule.value(msg.value)
        elif kind == "program_change" and self.mapping.program_selects_preset and msg.program < self.n_presets:
            with self._lock:
                self._pending["style_index"] = float(msg.program)

    def _apply_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                batch, self._pending = self._pending, {}
            if batch:
                for name, value in batch.items():
                    with contextlib.suppress(MstError):  # a value out of range is ignored
                        self.params.set(name, value)
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        try:
            self._port.close()
        except Exception:
            pass
