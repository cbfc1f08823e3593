"""Where and in what precision the network runs: the one place a torch device is chosen."""

from __future__ import annotations

import torch

from .errors import ParameterError

PRECISIONS = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def pick_device(device: str | torch.device, *, option: str = "device") -> torch.device:
    """'cpu', 'cuda' or 'auto' (CUDA when there is one) as a torch device; the error names ``option``."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ParameterError(f"{option}={name!r} must be cpu, cuda or auto")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"{option}={name!r}: no CUDA device is available (try auto)")
    return torch.device(name)


def pick_precision(precision: str, *, option: str = "precision") -> torch.dtype:
    if precision not in PRECISIONS:
        raise ParameterError(f"{option}={precision!r} must be one of {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def is_out_of_memory(exc: BaseException) -> bool:
    """torch reports exhausted memory as RuntimeError (CPU allocator) or OutOfMemoryError (CUDA)."""
    oom = getattr(torch, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) or (oom is not None and isinstance(exc, oom)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
