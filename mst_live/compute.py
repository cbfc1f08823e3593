"""Where and in what arithmetic the network runs: the one place a torch device and precision are chosen.

The network's cost is streaming its 45 M weights through memory twice per evaluation, so the
arithmetic decides the speed. What is fast differs from machine to machine by two orders of
magnitude: bfloat16 is the fastest where the CPU has native bfloat16 (AVX512-BF16, AMX) and
about 25x slower than float32 where it has not (most laptops), while packed float16 weights with
float32 arithmetic (fbgemm) are 3x faster than float32 on any x86 CPU with AVX2, and int8 weights
6x. ``auto`` picks by what the device has and, among the paths that are correct there, by a short
measurement.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import torch

from .errors import ParameterError
from .settings import PRECISIONS

# The precisions `auto` may pick on a CPU, the fastest measured. int8 weights (1 % error in each
# product, 8 % in the input gradient, against bfloat16's 0.3 % and 4 %) scored as bfloat16 and
# float16 on the quality benchmark's measures (BENCHMARKS.md, "Network arithmetic").
AUTO_CANDIDATES = ("bfloat16", "int8", "float16", "float32")
# Filters in the measured slice: the cost is memory-bound, so a slice ranks the paths as the whole
# network does, as long as it is too big for the caches (69 MB in float32, 35 MB packed).
_MEASURE_ROWS = 1536


@dataclass(frozen=True)
class Choice:
    """A device and a precision, and the reason, as the status line and the start event say it."""

    device: torch.device
    precision: str
    why: str

    def describe(self) -> str:
        return f"{self.precision} on {self.device} ({self.why})"


def pick_device(device: str | torch.device, *, option: str = "device") -> torch.device:
    """'cpu', 'cuda', 'mps' or 'auto' (CUDA, then Apple's MPS, then the CPU) as a torch device;
    the error names ``option``."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise ParameterError(f"{option}={name!r} must be cpu, cuda, mps or auto")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"{option}={name!r}: no CUDA device is available (try auto)")
    if name == "mps" and not _mps_available():
        raise ParameterError(f"{option}={name!r}: no Apple MPS device is available (try auto)")
    return torch.device(name)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 natively (a CUDA GPU from Ampere on, compute capability
    8.0: older ones emulate it; a CPU with AVX512-BF16 or AMX that oneDNN may use: an
    ``ONEDNN_MAX_CPU_ISA`` cap below that turns it off)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def packed_weights_available() -> bool:
    """Whether torch has fbgemm's packed float16 and int8 products (x86 CPUs with AVX2)."""
    return "fbgemm" in torch.backends.quantized.supported_engines and hasattr(torch.ops.quantized, "linear_prepack_fp16")


def runnable(precision: str, device: torch.device) -> str | None:
    """Why ``precision`` cannot run on ``device`` at all, or None if it can."""
    if precision in ("float16", "int8"):
        if device.type != "cpu":
            return f"packed {precision} weights run on the CPU only"
        if not packed_weights_available():
            return f"this torch has no packed {precision} products (fbgemm) for this CPU"
    return None


def check_precision(precision: str, *, option: str = "precision") -> str:
    if precision not in PRECISIONS:
        raise ParameterError(f"{option}={precision!r} must be one of {', '.join(PRECISIONS)}")
    return precision


def cpu_capability() -> str:
    """The vector instruction set torch dispatches to here (AVX2, AVX512, ...), for every speed figure."""
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        cap = "unknown"
    return f"{cap}{'+bf16' if native_bfloat16(torch.device('cpu')) else ''}"


def measure_product(precision: str, device: torch.device, *, inputs: int = 11275, columns: int = 16,
                    repeats: int = 5) -> float:
    """Median seconds of one forward and one backward product of a slice of the network's shape
    in ``precision``: a short measurement to rank the paths a device can run."""
    from .features import make_product

    gen = torch.Generator().manual_seed(0)
    w = torch.randn(_MEASURE_ROWS, inputs, generator=gen) * 0.01
    product = make_product(w, precision=precision, device=device)
    cols = torch.rand(inputs, columns, generator=gen).to(device)
    grad = torch.randn(_MEASURE_ROWS, columns, generator=gen).to(device)
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        product.forward(cols)
        product.backward(grad)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first run pays for lazy set-up
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def choose(device: str | torch.device = "auto", precision: str = "auto", *, network: str = "structured",
           option: str = "precision", device_option: str = "device") -> Choice:
    """The device and precision the network runs in, and why.

    The structured network (the default) runs in float32: it stores no weights, so there is
    nothing for a narrower arithmetic to save, and nothing to measure. For the dense network,
    ``auto``: bfloat16 on a CUDA GPU; on a CPU the fastest, by a short measurement, of the
    precisions that run natively here (bfloat16 only where the CPU multiplies it natively). An
    explicit bfloat16 that the CPU cannot run natively still runs; where it measures more than
    1.5x slower than what ``auto`` picks, one warning says by how much.
    """
    dev = pick_device(device, option=device_option)
    check_precision(precision, option=option)
    if network == "structured":
        if precision not in ("auto", "float32"):
            raise ParameterError(f"{option}={precision!r}: the structured network runs in float32 only; the other "
                                 "precisions are the dense network's (a preset built with --network dense)")
        return Choice(dev, "float32", "structured network, float32" if precision == "auto" else "asked for")
    if precision == "auto":
        return _choose_auto(dev)[0]
    reason = runnable(precision, dev)
    if reason is not None:
        raise ParameterError(f"{option}={precision!r}: {reason} (try auto)")
    if dev.type == "cpu" and precision == "bfloat16" and not native_bfloat16(dev):
        best, times = _choose_auto(dev)
        slow = measure_product("bfloat16", dev, repeats=2) / (times.get(best.precision) or measure_product(best.precision, dev))
        if slow > 1.5:
            warnings.warn(f"{option}={precision}: this CPU ({cpu_capability()}) has no native bfloat16; the network "
                          f"measured {slow:.0f}x slower than in {best.precision} (what auto picks here)", stacklevel=2)
        return Choice(dev, precision, f"asked for; {slow:.0f}x slower than {best.precision} here")
    return Choice(dev, precision, "asked for")


def _choose_auto(dev: torch.device) -> tuple[Choice, dict[str, float]]:
    """What ``auto`` picks on ``dev``, and the seconds it measured for each candidate (none where
    there was nothing to measure): on a CPU or a CUDA GPU the fastest measured of the paths it runs
    natively (bfloat16 only where it is native), elsewhere float32."""
    if dev.type not in ("cpu", "cuda"):
        return Choice(dev, "float32", f"{dev.type}: float32"), {}
    what = cpu_capability() if dev.type == "cpu" else "CUDA {}.{}".format(*torch.cuda.get_device_capability(dev))
    cands = [p for p in AUTO_CANDIDATES if runnable(p, dev) is None and (p != "bfloat16" or native_bfloat16(dev))]
    if len(cands) == 1:
        return Choice(dev, cands[0], f"{what}: the only path"), {}
    times = {p: measure_product(p, dev) for p in cands}
    best = min(times, key=times.get)
    native = "native bfloat16" if "bfloat16" in cands else "no native bfloat16"
    ranked = ", ".join(f"{p} {1000 * t:.2f} ms" for p, t in sorted(times.items(), key=lambda kv: kv[1]))
    return Choice(dev, best, f"{what}, {native}; measured {ranked}"), times


def use_threads(threads: int | None, *, live: bool) -> int:
    """Set how many CPU threads the network's products use, and return it.

    A device run takes one by default: with two or more, every product waits at a barrier for
    all of them, and when other programs load the CPU one descheduled thread stalls the step
    (BENCHMARKS.md, "Network threads": with a busy process on each of two cores, the worst step
    took 350 ms on two threads against 40 ms on one). A file render, which only wants
    throughput, keeps torch's default (one a core) unless ``threads`` says otherwise."""
    if threads is not None and not 1 <= threads <= 256:
        raise ParameterError(f"--threads {threads}: give 1..256 CPU threads for the network")
    if threads is None:
        threads = 1 if live else torch.get_num_threads()
    torch.set_num_threads(threads)
    return threads


def cpu_threads() -> int:
    """The CPU threads the network's products use now (`use_threads`)."""
    return torch.get_num_threads()


def is_out_of_memory(exc: BaseException) -> bool:
    """torch reports exhausted memory as RuntimeError (CPU allocator) or OutOfMemoryError (CUDA)."""
    oom = getattr(torch, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) or (oom is not None and isinstance(exc, oom)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
