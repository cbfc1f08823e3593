"""The structured random network: its weights are three seeded sign flips between Walsh–Hadamard
transforms, never stored.

Each block of filters is the first rows of √D·H D₃ H D₂ H D₁ over the inputs zero-padded to a power
of two D, H the orthonormal Walsh–Hadamard matrix and the Dᵢ seeded random sign diagonals, scaled to
the dense network's σ. Such structured orthogonal random features estimate the same arc-cosine
kernel as Gaussian ReLU features, as well or better (Yu et al. 2016, Choromanski et al. 2017), so
a Gram of them measures style as the dense network's does, at O(D log D) per column with nothing
to store or draw at start-up. Where there are more filters than D, further blocks with their own
signs follow.

The transform is exact float32 additions in a fixed order (no fast-math), so a preset's
features are the same bits on every CPU. The CPU path is a numba kernel over (D, columns) arrays,
columns last so that every butterfly is a vector operation and a 16-column block stays in cache;
GPUs run the same product as two Kronecker factors in torch.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from .features import Product
from .settings import Settings


def padded_size(inputs: int) -> int:
    """D: the power of two the inputs are zero-padded to."""
    return 1 << max(1, (inputs - 1).bit_length())


# Rows a cache-resident chunk of the transform holds per column: 8192 float32 values, 32 KiB,
# about a core's L1 data cache
_CHUNK_VALUES = 8192


@numba.njit(cache=True, nogil=True)
def _fwht_rows(x: np.ndarray, first: int, step: int, n: int) -> None:
    """Unnormalised Walsh–Hadamard transform over the n rows first, first + step, ... of x (n a power
    of two): radix-4 butterflies, one radix-2 pass where log2 n is odd; each butterfly is a vector
    operation over the columns."""
    cols = x.shape[1]
    h = 1
    while 4 * h <= n:
        for i in range(0, n, 4 * h):
            for j in range(i, i + h):
                r0 = first + j * step
                r1 = r0 + h * step
                r2 = r1 + h * step
                r3 = r2 + h * step
                for t in range(cols):
                    a = x[r0, t]
                    b = x[r1, t]
                    c = x[r2, t]
                    e = x[r3, t]
                    s1 = a + b
                    d1 = a - b
                    s2 = c + e
                    d2 = c - e
                    x[r0, t] = s1 + s2
                    x[r1, t] = d1 + d2
                    x[r2, t] = s1 - s2
                    x[r3, t] = d1 - d2
        h *= 4
    if h < n:
        for i in range(0, n, 2 * h):
            for j in range(i, i + h):
                r0 = first + j * step
                r1 = r0 + h * step
                for t in range(cols):
                    a = x[r0, t]
                    b = x[r1, t]
                    x[r0, t] = a + b
                    x[r1, t] = a - b


@numba.njit(cache=True, nogil=True)
def _fwht_signed(x: np.ndarray, signs: np.ndarray, flip: bool) -> None:
    """H·diag(signs)·x in place (the signs only where ``flip``), as H_D = (H_{D/B} ⊗ I_B)(I_{D/B} ⊗ H_B):
    first each chunk of B consecutive rows, small enough to stay in cache, is flipped and transformed
    in one visit; then the rows B apart, as a transform over the rows of x seen as (D/B, B·columns),
    which streams through memory in order (sets of single rows B apart fall into one cache set).
    0.23 against 0.29 ms for a (16384, 16) block."""
    d, cols = x.shape
    b = 1
    while 2 * b <= d and 2 * b * cols <= _CHUNK_VALUES:
        b *= 2
    for c in range(0, d, b):
        if flip:
            for i in range(c, c + b):
                if signs[i] < 0:
                    for t in range(cols):
                        x[i, t] = -x[i, t]
        _fwht_rows(x, c, 1, b)
    if b < d:
        _fwht_rows(x.reshape(d // b, b * cols), 0, 1, d // b)


@numba.njit(cache=True, nogil=True)
def fwht(x: np.ndarray) -> None:
    """In place, unnormalised Walsh–Hadamard transform (Sylvester order) along the first axis of a
    C-ordered (D, columns) float32 array, D a power of two. H·H = D·I."""
    _fwht_signed(x, np.ones(1, dtype=np.int8), False)


@numba.njit(cache=True, nogil=True)
def _forward(frames: np.ndarray, width: int, signs: np.ndarray, scale: float, work: np.ndarray,
             out: np.ndarray) -> None:
    """out (F, T) = the structured matrix times the unfolded ``frames`` (bins, T + width - 1): input
    row j·bins + b of column t is frame t + j's bin b, gathered here rather than copied out first.
    ``work`` is (D, T) scratch."""
    bins = frames.shape[0]
    t = out.shape[1]
    n = bins * width
    d = work.shape[0]
    f = out.shape[0]
    for b in range(signs.shape[0]):
        s1, s2, s3 = signs[b, 0], signs[b, 1], signs[b, 2]
        for j in range(width):
            for q in range(bins):
                i = j * bins + q
                if s1[i] > 0:
                    for k in range(t):
                        work[i, k] = frames[q, k + j]
                else:
                    for k in range(t):
                        work[i, k] = -frames[q, k + j]
        work[n:] = 0.0
        fwht(work)
        _fwht_signed(work, s2, True)
        _fwht_signed(work, s3, True)
        lo = b * d
        for i in range(lo, min(f, lo + d)):
            for k in range(t):
                out[i, k] = work[i - lo, k] * scale


@numba.njit(cache=True, nogil=True)
def _backward(grad: np.ndarray, width: int, signs: np.ndarray, scale: float, work: np.ndarray,
              out: np.ndarray) -> None:
    """out (bins, T + width - 1) = the gradient of `_forward`'s frames: the structured matrix's
    transpose times grad (F, T), each input row added back onto the frame and bin it came from."""
    f, t = grad.shape
    d = work.shape[0]
    bins = out.shape[0]
    out[:] = 0.0
    for b in range(signs.shape[0]):
        s1, s2, s3 = signs[b, 0], signs[b, 1], signs[b, 2]
        lo = b * d
        rows = min(f, lo + d) - lo
        for i in range(rows):
            for k in range(t):
                work[i, k] = grad[lo + i, k] * scale
        work[rows:] = 0.0
        fwht(work)
        _fwht_signed(work, s3, True)
        _fwht_signed(work, s2, True)
        for j in range(width):
            for q in range(bins):
                i = j * bins + q
                if s1[i] > 0:
                    for k in range(t):
                        out[q, k + j] += work[i, k]
                else:
                    for k in range(t):
                        out[q, k + j] -= work[i, k]


def structured_signs(settings: Settings) -> np.ndarray:
    """The sign diagonals, int8 (blocks, 3, D) of ±1, from the seed: PCG64's raw stream (a stable,
    documented guarantee) read bit by bit, least significant bit first, the same on every machine."""
    inputs = settings.n_bins * settings.width
    d = padded_size(inputs)
    blocks = -(-settings.n_filters // d)
    bits = blocks * 3 * d
    raw = np.random.PCG64(settings.seed).random_raw(-(-bits // 64)).astype("<u8")
    flags = np.unpackbits(raw.view(np.uint8), bitorder="little")[:bits]
    return (1 - 2 * flags.astype(np.int8)).reshape(blocks, 3, d)


def structured_scale(settings: Settings) -> float:
    """σ·√D / D^{3/2}: the three unnormalised transforms' D^{3/2} undone, then √D·σ, so that each
    filter's weights over the inputs have the dense network's spread (entries of ±σ)."""
    d = padded_size(settings.n_bins * settings.width)
    return settings.sigma / d


def structured_checksum(signs: np.ndarray, scale: float) -> str:
    """Short SHA-256 of what defines the network: its kind, the signs and the float32 scale."""
    h = hashlib.sha256(b"structured-hadamard-3")
    h.update(np.ascontiguousarray(signs, dtype=np.int8).tobytes())
    h.update(np.float32(scale).astype("<f4").tobytes())
    return h.hexdigest()[:16]


# Columns below which a product stays on one thread: a 16-column block split in two ran 0.77
# against 0.91 ms, 431 columns (offline transfer's segments) 12.0 against 21.9 ms
_SPLIT_COLUMNS = 64


def _column_spans(columns: int) -> list[tuple[int, int]]:
    """The columns cut into one span for each of the network's CPU threads (`compute.use_threads`).
    Each column's transform is independent of the others: the features are the same bits as one
    call's, the gradient differs only where neighbouring spans' frames are summed."""
    n = min(torch.get_num_threads(), columns // (_SPLIT_COLUMNS // 2)) if columns >= _SPLIT_COLUMNS else 1
    edges = [round(i * columns / n) for i in range(n + 1)]
    return list(itertools.pairwise(edges))


class _SpanThreads:
    """The threads the spans run on, made when first needed, and again larger if a run asks for more."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0

    def __call__(self) -> ThreadPoolExecutor:
        with self._lock:
            want = torch.get_num_threads()
            if self._pool is None or self._size < want:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)  # its threads end once idle
                self._pool, self._size = ThreadPoolExecutor(want, thread_name_prefix="mst-live-product"), want
            return self._pool


_pool = _SpanThreads()


def _hadamard(n: int, device: torch.device) -> torch.Tensor:
    h = torch.ones(1, 1, device=device)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], dim=1), torch.cat([h, -h], dim=1)], dim=0)
    return h


class _TorchHadamard:
    """H_D·x as two Kronecker factors, H_D = H_a ⊗ H_b: two small matrix products, which a GPU
    runs far better than log2 D butterfly passes."""

    def __init__(self, d: int, device: torch.device) -> None:
        a = 1 << (int(math.log2(d)) // 2)
        self.a, self.b = a, d // a
        self.ha, self.hb = _hadamard(self.a, device), _hadamard(self.b, device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        y = x.reshape(self.a, self.b, t)
        y = torch.einsum("ij,jkt->ikt", self.ha, y)
        y = torch.einsum("kl,ilt->ikt", self.hb, y)
        return y.reshape(self.a * self.b, t)


class StructuredProduct(Product):
    """The structured matrix's product with columns and its transpose's with gradients, float32.
    A `features.Product`: on the CPU the numba kernel, elsewhere (``use_torch``) the torch form."""

    def __init__(self, settings: Settings, *, device: torch.device) -> None:
        self.inputs = settings.n_bins * settings.width
        self.filters = settings.n_filters
        self.signs = structured_signs(settings)
        self.scale = structured_scale(settings)
        self.d = self.signs.shape[2]
        self.checksum = structured_checksum(self.signs, self.scale)
        self.device = device
        self.use_torch = device.type != "cpu"
        self._local = threading.local()  # each thread its own scratch: one network may serve two engines
        self._torch: tuple[_TorchHadamard, torch.Tensor] | None = None

    def _torch_parts(self) -> tuple[_TorchHadamard, torch.Tensor]:
        if self._torch is None:
            self._torch = (_TorchHadamard(self.d, self.device),
                           torch.from_numpy(self.signs.astype(np.float32)).to(self.device))
        return self._torch

    def _scratch(self, columns: int) -> np.ndarray:
        """A C-ordered (D, columns) work array on this thread's buffer, which only grows: spans of a
        split product differ by a column and land on any thread, and a buffer kept for one size was
        reallocated on nearly every call."""
        buf = getattr(self._local, "work", None)
        if buf is None or buf.size < self.d * columns:
            buf = self._local.work = np.empty(self.d * columns, dtype=np.float32)
        return buf[: self.d * columns].reshape(self.d, columns)

    def forward(self, cols: torch.Tensor) -> torch.Tensor:
        if self.use_torch:
            return self._torch_forward(cols.float())
        return self.forward_frames(cols, 1)

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        if self.use_torch:
            return self._torch_backward(grad.float())
        return self.backward_frames(grad, 1)

    def conv(self, x: torch.Tensor, width: int) -> torch.Tensor:
        """On the CPU the kernel gathers the frames itself: no unfolded copy, and its gradient
        added back in the same pass (an unfold's backward in torch cost more than the product)."""
        if self.use_torch:
            return super().conv(x, width)
        if x.requires_grad:
            return _FramesProduct.apply(x, self, width)
        return self.forward_frames(x, width)

    def forward_frames(self, frames: torch.Tensor, width: int) -> torch.Tensor:
        x = np.ascontiguousarray(frames.detach().float().numpy())
        t = x.shape[1] - width + 1
        spans = _column_spans(t)
        if len(spans) == 1:
            return torch.from_numpy(self._forward_span(x, width))
        parts = _pool().map(lambda s: self._forward_span(np.ascontiguousarray(x[:, s[0] : s[1] + width - 1]), width),
                            spans)
        return torch.from_numpy(np.concatenate(list(parts), axis=1))

    def backward_frames(self, grad: torch.Tensor, width: int) -> torch.Tensor:
        g = np.ascontiguousarray(grad.detach().float().numpy())
        spans = _column_spans(g.shape[1])
        if len(spans) == 1:
            return torch.from_numpy(self._backward_span(g, width))
        out = np.zeros((self.inputs // width, g.shape[1] + width - 1), dtype=np.float32)
        parts = _pool().map(lambda s: self._backward_span(np.ascontiguousarray(g[:, s[0] : s[1]]), width), spans)
        for (a, b), part in zip(spans, parts, strict=True):  # neighbouring spans share width - 1 frames
            out[:, a : b + width - 1] += part
        return torch.from_numpy(out)

    def _forward_span(self, x: np.ndarray, width: int) -> np.ndarray:
        t = x.shape[1] - width + 1
        out = np.empty((self.filters, t), dtype=np.float32)
        _forward(x, width, self.signs, self.scale, self._scratch(t), out)
        return out

    def _backward_span(self, g: np.ndarray, width: int) -> np.ndarray:
        out = np.empty((self.inputs // width, g.shape[1] + width - 1), dtype=np.float32)
        _backward(g, width, self.signs, self.scale, self._scratch(g.shape[1]), out)
        return out

    def _torch_forward(self, cols: torch.Tensor) -> torch.Tensor:
        t = cols.shape[1]
        h, signs = self._torch_parts()
        parts = []
        for s in signs:
            x = torch.zeros(self.d, t, device=cols.device)
            x[: self.inputs] = cols * s[0, : self.inputs, None]
            x = h(h(h(x) * s[1, :, None]) * s[2, :, None])
            parts.append(x)
        return torch.cat(parts)[: self.filters] * self.scale

    def _torch_backward(self, grad: torch.Tensor) -> torch.Tensor:
        t = grad.shape[1]
        h, signs = self._torch_parts()
        out = torch.zeros(self.inputs, t, device=grad.device)
        for b, s in enumerate(signs):
            x = torch.zeros(self.d, t, device=grad.device)
            rows = grad[b * self.d : (b + 1) * self.d]
            x[: rows.shape[0]] = rows * self.scale
            x = h(h(h(x) * s[2, :, None]) * s[1, :, None])
            out += x[: self.inputs] * s[0, : self.inputs, None]
        return out


class _FramesProduct(torch.autograd.Function):
    """The structured conv over frames as one autograd step (the CPU kernel's own gather and scatter)."""

    @staticmethod
    def forward(ctx, frames: torch.Tensor, product: StructuredProduct, width: int) -> torch.Tensor:
        ctx.product, ctx.width = product, width
        return product.forward_frames(frames, width)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return ctx.product.backward_frames(grad, ctx.width), None, None
