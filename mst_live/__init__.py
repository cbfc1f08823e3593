"""mst-live: real-time music style transfer.

The library is the product; the command line, devices and screens sit around it. The public names
load on first use (PEP 562), so `import mst_live` and `mst-live --help` do not pay for torch,
numba and scipy until an engine, a network or a preset is asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .errors import AudioFileError, MstError, ParameterError, PresetError

# public name -> the module that defines it
_LAZY = {
    "build_preset": ".build",
    "griffinlim": ".dsp.griffinlim",
    "StreamingGriffinLim": ".dsp.streaming_gl",
    "StyleEngine": ".engine",
    "FeatureNet": ".features",
    "Preset": ".preset",
    "load_preset": ".preset",
    "Settings": ".settings",
    "transfer": ".transfer",
}

if TYPE_CHECKING:
    from .build import build_preset
    from .dsp.griffinlim import griffinlim
    from .dsp.streaming_gl import StreamingGriffinLim
    from .engine import StyleEngine
    from .features import FeatureNet
    from .preset import Preset, load_preset
    from .settings import Settings
    from .transfer import transfer


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'mst_live' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AudioFileError",
    "FeatureNet",
    "MstError",
    "ParameterError",
    "Preset",
    "PresetError",
    "Settings",
    "StreamingGriffinLim",
    "StyleEngine",
    "build_preset",
    "griffinlim",
    "load_preset",
    "transfer",
]
__version__ = "0.1.0"
