"""The structured network: its transform against dense Hadamard matrices, its pinned signs, and its
features and gradient against torch's own conv with the weights it stands for."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from mst_live import Settings
from mst_live.features import FeatureNet
from mst_live.structured import StructuredProduct, fwht, padded_size, structured_signs

# the default structured network's checksum when presets were first built on it: if it moves,
# every shipped preset stops loading
GOLDEN_STRUCTURED = "f492f5d86b790ff8"


def reference_signs(settings: Settings) -> np.ndarray:
    """The documented signs written again plainly: bit j of PCG64's raw stream, word j // 64,
    least significant bit first; 1 gives -1."""
    d = padded_size(settings.n_bins * settings.width)
    blocks = -(-settings.n_filters // d)
    words = np.random.PCG64(settings.seed).random_raw(blocks * 3 * d // 64 + 1).tolist()
    bits = [(words[j // 64] >> (j % 64)) & 1 for j in range(blocks * 3 * d)]
    return np.array([1 - 2 * b for b in bits]).reshape(blocks, 3, d)


def dense_matrix(settings: Settings) -> np.ndarray:
    """σ·√D·H D₃ H D₂ H D₁ block by block from scipy's Hadamard matrix, in float64: (filters, inputs)."""
    n = settings.n_bins * settings.width
    d = padded_size(n)
    h = scipy.linalg.hadamard(d).astype(np.float64) / np.sqrt(d)
    rows = []
    for s1, s2, s3 in reference_signs(settings).astype(np.float64):
        rows.append(np.sqrt(d) * (h * s3) @ (h * s2) @ (h * s1))  # H·diag(s) is h * s, column-wise
    return np.concatenate(rows)[: settings.n_filters, :n] * settings.sigma


def test_the_transform_is_the_hadamard_matrix():
    gen = np.random.default_rng(0)
    for d in (2, 4, 8, 32, 128, 2048):  # odd and even powers of two: the radix-2 pass and without it
        x = gen.standard_normal((d, 5)).astype(np.float32)
        want = scipy.linalg.hadamard(d) @ x.astype(np.float64)
        fwht(x)
        np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-4 * np.sqrt(d))


def test_signs_are_pinned():
    for s in (Settings(n_fft=64, hop_length=16, n_filters=300, width=3, seed=5), Settings(n_fft=512, hop_length=128)):
        assert np.array_equal(structured_signs(s), reference_signs(s))
    assert FeatureNet(Settings()).checksum == GOLDEN_STRUCTURED
    assert FeatureNet(Settings(seed=1)).checksum != GOLDEN_STRUCTURED


@pytest.mark.parametrize("filters", [40, 300])  # one block, and more filters than the padded inputs (128)
@pytest.mark.parametrize("use_torch", [False, True])
def test_the_product_is_the_matrix_it_stands_for(filters, use_torch):
    s = Settings(n_fft=64, hop_length=16, n_filters=filters, width=3, seed=5)
    m = dense_matrix(s)
    p = StructuredProduct(s, device=torch.device("cpu"))
    p.use_torch = use_torch
    gen = np.random.default_rng(1)
    x = gen.random((m.shape[1], 7)).astype(np.float32)
    g = gen.standard_normal((filters, 7)).astype(np.float32)
    np.testing.assert_allclose(p.forward(torch.from_numpy(x)).numpy(), m @ x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p.backward(torch.from_numpy(g)).numpy(), m.T @ g, rtol=1e-4, atol=1e-5)


def test_weights_have_the_dense_networks_spread():
    s = Settings(n_fft=128, hop_length=32, n_filters=200, width=5)
    m = dense_matrix(s)
    assert abs(m.std() / s.sigma - 1) < 0.02
    rows = m @ m.T  # orthogonal rows before the padding is cut off: nearly so after
    off = rows - np.diag(np.diag(rows))
    assert np.abs(off).max() < 0.3 * np.diag(rows).mean()


def test_features_and_their_gradient_are_the_plain_conv(small):
    """FeatureNet on the structured network against torch's conv1d with the weights it stands for."""
    net = FeatureNet(small)
    w = torch.from_numpy(dense_matrix(small)).reshape(small.n_filters, small.width, small.n_bins).permute(0, 2, 1)
    gen = torch.Generator().manual_seed(8)
    for frames in (small.width, small.width + 15, 300):
        x = torch.rand(small.n_bins, frames, generator=gen)
        target = torch.randn(small.n_filters, frames - small.width + 1, generator=gen, dtype=torch.float64)
        b = x.double().requires_grad_(True)
        fb = torch.relu(torch.nn.functional.conv1d(b[None], w)[0])
        (fb * target).sum().backward()
        target[fb.detach().abs() < 1e-4] = 0.0  # units at the ReLU kink may fall either side in float32
        b.grad = None
        fb = torch.relu(torch.nn.functional.conv1d(b[None], w)[0])
        (fb * target).sum().backward()
        a = x.clone().requires_grad_(True)
        fa = net(a)
        (fa * target.float()).sum().backward()
        torch.testing.assert_close(fa.double(), fb.detach(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.grad.double(), b.grad, rtol=1e-4, atol=1e-4)


def test_one_network_serves_two_threads_at_once(small):
    """The kernels release the GIL: two engines on two threads may share one network, and each
    gets its own features (each thread has its own scratch)."""
    from concurrent.futures import ThreadPoolExecutor

    net = FeatureNet(small)
    gen = torch.Generator().manual_seed(4)
    blocks = [torch.rand(small.n_bins, 40, generator=gen) for _ in range(2)]
    want = [net(b) for b in blocks]
    with ThreadPoolExecutor(2) as pool:
        for _ in range(20):
            got = list(pool.map(net, blocks))
            for g, w in zip(got, want, strict=True):
                assert torch.equal(g, w)


def test_a_long_product_split_over_threads_is_the_one_thread_product(small):
    """Many columns are cut into one span a thread: the features are the same bits, the gradient
    the same up to the order of the sums where spans meet."""
    net = FeatureNet(small)
    gen = torch.Generator().manual_seed(9)
    x = torch.rand(small.n_bins, 300, generator=gen)
    target = torch.randn(small.n_filters, 300 - small.width + 1, generator=gen)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            a = x.clone().requires_grad_(True)
            f = net(a)
            (f * target).sum().backward()
            results.append((f.detach(), a.grad))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0])
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-5, atol=1e-6)
    assert not torch.equal(results[0][1], torch.zeros_like(results[0][1]))
