"""The seeded random conv network whose feature statistics define style."""

from __future__ import annotations

import hashlib
import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from .errors import ParameterError
from .settings import Settings

_LN2 = 0.6931471805599453
_SQRT_HALF = 0.7071067811865476
_ATANH = np.array([1.0 / (2 * n + 1) for n in range(13)])  # atanh series: 1, 1/3, 1/5, ...
_SHIFT = np.uint64(11)
_ULP53 = 2.0**-53
# The weights are read once per product whatever the column count, but torch's bfloat16 GEMM here
# runs whole tiles of 16 columns fastest: 19 columns took 4.57 ms forward and 4.90 backward, 32
# took 3.82 and 3.94 and 16 took 2.86 and 3.27 (4000 x 11275 weights, 2 cores). Streaming blocks
# are padded with zero columns to a whole tile; long inputs are left alone.
TILE, TILE_LIMIT = 16, 256


def _tiled(columns: int, tile: int = TILE) -> int:
    """The columns the network computes for ``columns`` feature columns: short blocks whole tiles."""
    return columns + (-columns) % tile if columns < TILE_LIMIT else columns


@numba.njit(cache=True, nogil=True)
def _log_unit(s: float) -> float:
    """Natural log of a value in (0, 1) using only correctly rounded IEEE operations.

    libm's log may differ by an ulp between CPUs and libraries; frexp, +, *, / are exact or
    correctly rounded everywhere (and numba leaves fused multiply-add off without fastmath), so
    this gives the same bits on every machine. Accuracy is about 1e-16 relative, far below
    float32 resolution."""
    m, e = math.frexp(s)
    if m < _SQRT_HALF:
        m = m * 2.0
        e -= 1
    x = (m - 1.0) / (m + 1.0)
    x2 = x * x
    acc = _ATANH[12]
    for k in range(11, -1, -1):
        acc = acc * x2 + _ATANH[k]
    return 2.0 * x * acc + float(e) * _LN2


@numba.njit(cache=True, nogil=True)
def _polar(raw: np.ndarray, out: np.ndarray, filled: int) -> int:
    """The polar method over raw 64-bit words taken in pairs, written into ``out`` from
    ``filled``; returns how far ``out`` is filled."""
    n = out.size
    for i in range(raw.size // 2):
        if filled >= n:
            break
        a = float(raw[2 * i] >> _SHIFT) * _ULP53 * 2.0 - 1.0
        b = float(raw[2 * i + 1] >> _SHIFT) * _ULP53 * 2.0 - 1.0
        s = a * a + b * b
        if 0.0 < s < 1.0:
            f = math.sqrt((-2.0 * _log_unit(s)) / s)
            out[filled] = a * f
            filled += 1
            if filled < n:
                out[filled] = b * f
                filled += 1
    return filled


def seeded_normal(n: int, seed: int) -> np.ndarray:
    """``n`` standard normal float64 values, bit-identical on every machine and numpy version.

    The generator: numpy's PCG64 bit generator (its raw stream is a stable, documented
    guarantee) gives 53-bit uniforms u, v in [-1, 1); pairs with 0 < s = u^2 + v^2 < 1 are
    kept and mapped by the Marsaglia polar method, z = u * sqrt(-2 ln s / s), with the log
    computed by `_log_unit`. Values are produced in pairs (u-part, v-part) in stream order.
    Compiled: the 45 M weights of the default network took 3.1 s in numpy, a share of every
    start-up.
    """
    bitgen = np.random.PCG64(seed)
    out = np.empty(n, dtype=np.float64)
    filled = 0
    words = 2 * min(1 << 22, max(1024, int(n * 0.66) + 64))  # 0.785 of the pairs are kept
    # the next raw words are drawn on a second thread while this one maps the last ones, unless
    # these will almost surely finish the job (a chunk gives 0.785 values per word); the stream
    # is read in the same order either way
    with ThreadPoolExecutor(1) as pool:
        ahead = None
        while filled < n:
            raw = ahead.result() if ahead is not None else bitgen.random_raw(words)
            ahead = pool.submit(bitgen.random_raw, words) if n - filled > 0.75 * words else None
            filled = _polar(raw, out, filled)
    return out


def network_weights(settings: Settings) -> np.ndarray:
    """The conv weights, shape (n_filters, n_bins, width), float32, C order, from the seed."""
    shape = (settings.n_filters, settings.n_bins, settings.width)
    z = seeded_normal(math.prod(shape), settings.seed)
    return (z * settings.sigma).astype(np.float32).reshape(shape)


def weights_checksum(weights: np.ndarray) -> str:
    """Short SHA-256 of the little-endian float32 weight bytes, stored in every preset."""
    data = np.ascontiguousarray(weights, dtype="<f4").tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def log_magnitude(magnitude: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """The spectrogram the network sees: log1p of the STFT magnitude."""
    if isinstance(magnitude, torch.Tensor):
        return torch.log1p(magnitude)
    return np.log1p(magnitude)


def make_product(matrix: torch.Tensor, *, precision: str, device: str | torch.device = "cpu") -> Product:
    """The network's product with ``matrix`` (filters, inputs; float32) and with its transpose, in
    ``precision`` (a concrete one, not 'auto'; see compute.py)."""
    if precision in ("float16", "int8"):
        return PackedProduct(matrix, precision)
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    return DenseProduct(matrix.to(device=device, dtype=dtype))


class Product:
    """``matrix @ cols`` and ``matrix.T @ grad`` for one weight matrix, in some arithmetic. ``tile``:
    the column count it computes fastest in multiples of (1: any count, the cost linear in it)."""

    tile = 1

    def forward(self, cols: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def conv(self, x: torch.Tensor, width: int) -> torch.Tensor:
        """Pre-activations (filters, T - width + 1) of the valid conv over ``x`` (bins, T), float32
        in, through autograd where ``x`` needs a gradient: the product with the unfolded frames."""
        t = x.shape[1] - width + 1
        cols = x.unfold(1, width, 1).permute(2, 0, 1).reshape(width * x.shape[0], t)
        padded = _tiled(t, self.tile)
        if padded > t:  # zero columns up to a whole tile, cut off again below
            cols = torch.nn.functional.pad(cols, (0, padded - t))
        out = _Product.apply(cols, self) if cols.requires_grad else self.forward(cols)
        return out[:, :t]


class DenseProduct(Product):
    """torch's own matmul in the matrix's dtype. The backward product multiplies by the transpose,
    which torch reads from the forward layout with a stride of 11275 elements; a second, transposed
    copy (made the first time a gradient is asked for) reads it in order: 9.5 ms -> 5.0 ms for that
    product on a 38-column block in bfloat16."""

    tile = TILE

    def __init__(self, matrix: torch.Tensor) -> None:
        self.matrix = matrix
        self._matrix_t: torch.Tensor | None = None

    def forward(self, cols: torch.Tensor) -> torch.Tensor:
        return self.matrix @ cols.to(self.matrix.dtype)

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        if self._matrix_t is None:
            self._matrix_t = self.matrix.T.contiguous()
        return self._matrix_t @ grad.to(self.matrix.dtype)


class PackedProduct(Product):
    """fbgemm's packed weights: float16 or int8 (per filter scales) in memory, float32 arithmetic
    (int8: the columns quantised per call). A quarter or half of float32's bytes to stream, on any
    x86 CPU with AVX2. Relative error of one product: 2e-4 in float16, 1.3 % in int8."""

    tile = TILE

    def __init__(self, matrix: torch.Tensor, precision: str) -> None:
        self.precision = precision
        self._matrix: torch.Tensor | None = matrix.float().contiguous()  # until the transpose is packed
        self._packed = self._pack(self._matrix)
        self._packed_t = None

    def _pack(self, m: torch.Tensor):
        if self.precision == "float16":
            return torch.ops.quantized.linear_prepack_fp16(m, None)
        scale = (m.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
        with warnings.catch_warnings():  # quantised tensors are deprecated for new code, still the int8 packing's input
            warnings.simplefilter("ignore")
            q = torch.quantize_per_channel(m, scale, torch.zeros(m.shape[0], dtype=torch.long), 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(q, None)

    def _apply(self, packed, x: torch.Tensor) -> torch.Tensor:
        xt = x.detach().float().T.contiguous()
        if self.precision == "float16":
            return torch.ops.quantized.linear_dynamic_fp16(xt, packed).T
        return torch.ops.quantized.linear_dynamic(xt, packed).T

    def forward(self, cols: torch.Tensor) -> torch.Tensor:
        return self._apply(self._packed, cols)

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        if self._packed_t is None:
            self._packed_t = self._pack(self._matrix.T.contiguous())
            self._matrix = None
        return self._apply(self._packed_t, grad)


class FeatureNet:
    """One conv1d over time, frequency bins as channels, no bias, ReLU, 'valid' padding: the
    structured network (structured.py) or the dense one, as ``settings.network`` says.

    Valid padding means a chunk with ``width - 1`` frames of left context gives exactly the
    features of the whole signal, which is what makes chunked preset builds and streaming
    blocks agree with whole-clip processing.

    The dense conv runs as one matmul of the weights, laid out once as (filters, width * bins), with
    the unfolded input. torch's conv1d re-lays-out the 45 M weights on every call, which was
    measured at 115 ms per forward and backward pass on a 16-frame block, against 10 ms this way
    in bfloat16. ``precision`` is a concrete one from settings.PRECISIONS (``compute.choose``
    resolves 'auto'; the structured network takes float32 only); the features come out in float32
    whatever it is.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        device: str | torch.device = "cpu",
        precision: str = "float32",
    ) -> None:
        self.settings = settings
        self.device = torch.device(device)
        self.precision = precision
        self.product: Product
        if settings.network == "structured":
            from .structured import StructuredProduct

            if precision != "float32":
                raise ParameterError(f"precision={precision!r}: the structured network runs in float32 only "
                                     "(the precisions are the dense network's)")
            self.product = StructuredProduct(settings, device=self.device)
            self.checksum = self.product.checksum
            return
        weights = network_weights(settings)
        self.checksum = weights_checksum(weights)
        w = torch.from_numpy(weights)  # (filters, bins, width)
        matrix = w.permute(0, 2, 1).reshape(settings.n_filters, -1).contiguous()
        self.product = make_product(matrix, precision=precision, device=self.device)

    @property
    def context(self) -> int:
        """Frames of left context one output frame needs beyond itself."""
        return self.settings.width - 1

    def tile_padding(self, frames: int, *, at_least: int) -> int:
        """How many frames to append to ``frames`` (after the left context) so that the feature
        columns fill whole tiles: at least ``at_least``, more where the tile has room, at most
        the context. The appended frames cost nothing where the dense network would pad the tile
        anyway; the structured network, whose cost is linear in the columns, is given the same loss."""
        return max(0, min(self.context, _tiled(frames + at_least) - frames))

    def __call__(self, logmag: torch.Tensor) -> torch.Tensor:
        """Features (n_filters, T - width + 1), float32, of a log spectrogram (n_bins, T)."""
        k = self.settings.width
        x = logmag.to(device=self.device, dtype=torch.float32)
        t = x.shape[1] - k + 1
        if t <= 0:
            return torch.zeros(self.settings.n_filters, 0, device=self.device)
        return torch.relu(self.product.conv(x, k)).float()


class _Product(torch.autograd.Function):
    """The network's product as one autograd step, whatever arithmetic the product runs in."""

    @staticmethod
    def forward(ctx, cols: torch.Tensor, product: Product) -> torch.Tensor:
        ctx.product = product
        return product.forward(cols)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return ctx.product.backward(grad).float(), None
