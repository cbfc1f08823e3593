"""mst-live: real-time music style transfer.

The library is the product; the command line, devices and screens sit around it.
"""

from .build import build_preset
from .dsp.griffinlim import griffinlim
from .dsp.streaming_gl import StreamingGriffinLim
from .engine import StyleEngine
from .errors import AudioFileError, MstError, ParameterError, PresetError
from .features import FeatureNet
from .preset import Preset, load_preset
from .settings import Settings
from .transfer import transfer

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
