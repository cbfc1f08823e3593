"""The engine is a library first: io/ holds devices and files, and depends on no screen or MIDI;
the one use of sounddevice's internals checks the version it was made for."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest

from mst_live.io.audio import DeviceError
from mst_live.io.portaudio import check_sounddevice

PKG = Path(__file__).resolve().parent.parent / "mst_live"


def imported(path: Path) -> set[str]:
    """The mst_live modules a file imports, as dotted names relative to the package."""
    tree, out = ast.parse(path.read_text()), set()
    here = path.relative_to(PKG).with_suffix("").parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[: len(here) - node.level + 1])
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out |= {mod} if node.module else {f"{mod}.{a.name}".strip(".") for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mst_live."):
            out.add(node.module.removeprefix("mst_live."))
    return out


def test_io_imports_nothing_from_the_screen_midi_or_the_app():
    found = {f"{p.name}: {m}" for p in (PKG / "io").glob("*.py") for m in imported(p)
             if m.split(".")[0] in ("ui", "midi", "app", "cli")}
    assert not found, found
    assert "io.live" in imported(PKG / "app" / "live.py")  # the check sees imports at all


def test_the_engine_imports_no_device_screen_or_midi():
    for name in ("engine.py", "block_optimiser.py", "styles.py", "planner.py", "losses.py", "features.py", "warm_up.py"):
        found = {m for m in imported(PKG / name) if m.split(".")[0] in ("io", "ui", "midi", "app", "cli")}
        assert not found, (name, found)


def test_sounddevice_internals_are_checked_with_one_line():
    import sounddevice

    assert check_sounddevice() is sounddevice  # the installed one is a checked version
    for fake in (types.SimpleNamespace(__version__="0.7.0", _StreamBase=object, _ffi=object),
                 types.SimpleNamespace(__version__="0.5.1")):
        with pytest.raises(DeviceError, match=r"pip install 'sounddevice>=0\.4\.6,<0\.6\.0'") as err:
            check_sounddevice(fake)
        assert "\n" not in str(err.value)
