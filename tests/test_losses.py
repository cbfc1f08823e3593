import librosa
import numpy as np
import torch

from mst_live import Settings
from mst_live.dsp.mel import mel_bank
from mst_live.losses import (
    FeatureMemory,
    StyleTarget,
    attack_envelope,
    attack_loss,
    chroma_filterbank,
    content_loss,
    gram,
    pitch_classes,
    pitch_loss,
    style_distances,
    style_loss,
)


def test_low_rank_style_loss_equals_full_gram_formula_float64():
    g = torch.Generator().manual_seed(0)
    c, t, r = 40, 23, 7
    feats = torch.rand(c, t, generator=g, dtype=torch.float64).requires_grad_(True)
    content = torch.rand(c, t, generator=g, dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.randn(c, r, generator=g, dtype=torch.float64))
    eig = torch.rand(r, generator=g, dtype=torch.float64) * 3
    gs = basis @ torch.diag(eig) @ basis.T
    target = StyleTarget.from_eig(basis, eig, float((gs * gs).sum()))

    fast = style_loss(feats, target) + content_loss(feats, content, 1e-2)
    (grad_fast,) = torch.autograd.grad(fast, feats)
    naive = ((gram(feats) - gs) ** 2).sum() + 1e-2 * ((feats - content) ** 2).sum()
    (grad_naive,) = torch.autograd.grad(naive, feats)

    assert abs(float((fast - naive).detach())) / float(naive.detach()) <= 1e-4
    assert float(torch.linalg.norm(grad_fast - grad_naive) / torch.linalg.norm(grad_naive)) <= 1e-4
    # and the loss is actually sensitive: a different target gives a different value
    other = StyleTarget.from_eig(basis, eig * 2, float((4 * gs * gs).sum()))
    assert abs(float((style_loss(feats, other) - style_loss(feats, target)).detach())) > 1e-3


def test_style_loss_is_zero_at_its_own_gram():
    g = torch.Generator().manual_seed(1)
    f = torch.rand(16, 30, generator=g, dtype=torch.float64)
    vals, vecs = torch.linalg.eigh(gram(f))
    target = StyleTarget.from_eig(vecs, vals.clamp(min=0), float((gram(f) ** 2).sum()))
    assert abs(float(style_loss(f, target))) < 1e-8 * float((gram(f) ** 2).sum())


def test_chroma_filterbank_is_librosas():
    ours = chroma_filterbank(sample_rate=22050, n_fft=2048)
    theirs = librosa.filters.chroma(sr=22050, n_fft=2048, octwidth=None)
    assert ours.shape == (12, 1025)
    assert np.abs(ours - theirs).max() < 1e-6


def test_pitch_loss_ignores_gain_and_sees_moved_notes():
    bank = torch.from_numpy(chroma_filterbank(sample_rate=22050, n_fft=2048))
    g = torch.Generator().manual_seed(3)
    mag = torch.rand(1025, 12, generator=g, dtype=torch.float64) * 0.1
    mag[40] += 50.0  # a strong partial near 430 Hz in every frame
    target = pitch_classes(mag, bank)
    assert float(pitch_loss(mag, target, bank, 1.0)) < 1e-20
    assert float(pitch_loss(mag * 8.0, target, bank, 1.0)) < 1e-10  # a gain is not a new note
    moved = mag.clone()
    moved[40] -= 50.0
    moved[45] += 50.0  # the partial moved by about a semitone
    assert float(pitch_loss(moved, target, bank, 1.0)) > 0.5
    # silence has no pitch and no infinite gradient
    silent = torch.zeros(1025, 4, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(pitch_loss(silent, pitch_classes(mag[:, :4], bank), bank, 1.0), silent)
    assert torch.isfinite(grad).all()


def test_feature_memory_keeps_the_last_frames_and_their_gram_norm():
    """Column by column it is the plain sliding window, and its ‖MᵀM‖² the product recomputed."""
    gen = torch.Generator().manual_seed(5)
    mem = FeatureMemory(40, 25)
    window = torch.zeros(40, 0, dtype=torch.float64)
    for n in (3, 7, 1, 12, 30, 7, 7, 0, 2):
        f = torch.rand(40, n, generator=gen)
        mem.push(f)
        window = torch.cat([window, f.double()], dim=1)[:, -25:]
        assert torch.equal(mem.features.double(), window)
        naive = float(((window.T @ window) ** 2).sum())
        assert abs(mem.gram_sq - naive) <= 1e-5 * naive + 1e-9
    mem.reset()
    assert mem.features.shape == (40, 0) and mem.gram_sq == 0.0
    off = FeatureMemory(40, 0)
    off.push(torch.rand(40, 5))
    assert off.features.shape[1] == 0 and off.gram_sq == 0.0


def test_style_loss_with_memory_equals_the_full_gram_of_memory_and_block():
    """The engine's objective: the style term over the memory's columns and the block's, against
    the C x C Gram of the two together formed naively, in float64, value and gradient."""
    g = torch.Generator().manual_seed(3)
    c, r = 30, 5
    mem = FeatureMemory(c, 12, dtype=torch.float64)
    for n in (5, 9):  # a memory that has filled and slid
        mem.push(torch.rand(c, n, generator=g, dtype=torch.float64))
    basis = torch.linalg.qr(torch.randn(c, r, generator=g, dtype=torch.float64))[0]
    eig = torch.rand(r, generator=g, dtype=torch.float64) + 0.1
    g_s = basis @ torch.diag(eig) @ basis.T
    target = StyleTarget.from_eig(basis, eig, float((g_s * g_s).sum()))
    f = torch.rand(c, 7, generator=g, dtype=torch.float64).requires_grad_(True)
    ours = style_loss(f, target, mem)
    (g_ours,) = torch.autograd.grad(ours, f)
    f2 = f.detach().clone().requires_grad_(True)
    both = torch.cat([mem.features, f2], dim=1)
    naive = ((gram(both) - g_s) ** 2).sum()
    (g_naive,) = torch.autograd.grad(naive, f2)
    assert mem.features.shape[1] == 12
    torch.testing.assert_close(ours, naive, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(g_ours, g_naive, rtol=1e-9, atol=1e-12)
    # without the memory it is the block's own Gram
    torch.testing.assert_close(style_loss(f, target), ((gram(f) - g_s) ** 2).sum(), rtol=1e-9, atol=1e-12)


def slid_memory_and_style(seed: int, c: int = 30):
    """A memory of 12 frames filled and slid, and a style with a mean, in float64: the generator
    (for the block's draws), the memory, the style's Gram, mean, eigenpairs and target."""
    g = torch.Generator().manual_seed(seed)
    mem = FeatureMemory(c, 12, dtype=torch.float64)
    for n in (5, 9):
        mem.push(torch.rand(c, n, generator=g, dtype=torch.float64))
    style = torch.rand(c, 50, generator=g, dtype=torch.float64) + 0.3
    g_s = gram(style)
    vals, vecs = torch.linalg.eigh(g_s)
    mu_s = style.mean(dim=1)
    target = StyleTarget.from_eig(vecs, vals.clamp(min=0), float((g_s * g_s).sum()), mean=mu_s)
    return g, mem, g_s, mu_s, (vals, vecs), target


def test_covariance_distance_equals_the_full_covariance_of_memory_and_block():
    """The texture term: ‖C − C_s‖² with C the covariance of the memory's columns and the block's
    together and C_s = G_s − μ_s μ_sᵀ, against both formed naively in float64, value and gradient,
    with the memory filled and slid, and with none."""
    c = 30
    g, mem, g_s, mu_s, (vals, vecs), target = slid_memory_and_style(5, c)
    c_s = g_s - torch.outer(mu_s, mu_s)

    def naive(x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(dim=1)
        return ((gram(x) - torch.outer(mu, mu) - c_s) ** 2).sum()

    for memory in (mem, None):
        f = torch.rand(c, 7, generator=g, dtype=torch.float64).requires_grad_(True)
        gram_dist, cov = style_distances(f, target, memory)
        torch.testing.assert_close(gram_dist, style_loss(f, target, memory))
        (g_ours,) = torch.autograd.grad(cov, f)
        f2 = f.detach().clone().requires_grad_(True)
        ref = naive(f2 if memory is None else torch.cat([mem.features, f2], dim=1))
        (g_naive,) = torch.autograd.grad(ref, f2)
        torch.testing.assert_close(cov, ref, rtol=1e-8, atol=1e-12)
        torch.testing.assert_close(g_ours, g_naive, rtol=1e-8, atol=1e-12)
    # the covariance ignores a shift of every column that the uncentred Gram sees
    f = torch.rand(c, 40, generator=g, dtype=torch.float64)
    shifted = f + 0.5 * torch.rand(c, 1, generator=g, dtype=torch.float64)
    (g0, c0), (g1, c1) = style_distances(f, target), style_distances(shifted, target)
    assert abs(float(c1 - c0)) < 1e-9 * float(c0) and abs(float(g1 - g0)) > 1e-3 * float(g0)
    # a target without a mean has no covariance term; a morph keeps a mean only where both have one
    plain = StyleTarget.from_eig(vecs, vals.clamp(min=0), float((g_s * g_s).sum()))
    assert style_distances(f, plain)[1] is None
    assert plain.blend(target, 0.5, 0.0).mean is None
    half = target.blend(StyleTarget.from_eig(vecs, vals.clamp(min=0), float((g_s * g_s).sum()), mean=2 * mu_s),
                        0.5, float((g_s * g_s).sum()))
    torch.testing.assert_close(half.mean, 1.5 * mu_s)


def test_both_style_terms_weighted_together_have_the_naive_gradient():
    """The engine's sum, a·Gram distance + b·covariance distance, over a filled memory and the block:
    value and gradient against both formed naively in float64 (each term's gradient alone above)."""
    c = 24
    g, mem, g_s, mu_s, _, target = slid_memory_and_style(9, c)
    f = torch.rand(c, 5, generator=g, dtype=torch.float64).requires_grad_(True)
    gram_dist, cov = style_distances(f, target, mem)
    (g_ours,) = torch.autograd.grad(0.7 * gram_dist + 0.3 * cov, f)
    f2 = f.detach().clone().requires_grad_(True)
    x = torch.cat([mem.features, f2], dim=1)
    mu = x.mean(dim=1)
    c_s = g_s - torch.outer(mu_s, mu_s)
    naive = 0.7 * ((gram(x) - g_s) ** 2).sum() + 0.3 * ((gram(x) - torch.outer(mu, mu) - c_s) ** 2).sum()
    (g_naive,) = torch.autograd.grad(naive, f2)
    torch.testing.assert_close(0.7 * gram_dist + 0.3 * cov, naive, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(g_ours, g_naive, rtol=1e-8, atol=1e-12)


def test_a_memory_longer_than_its_rank_gives_the_full_memorys_distances():
    """Past ``rank`` columns the memory's products go through its low-rank factor. Known answer:
    60 columns that span 10 dimensions, whose factor spans them exactly, give the naive distances
    and gradient of memory and block together; columns of real rank 60 with a few strong
    directions (as ReLU features have) give them within 1e-3."""
    c = 50
    g, _, g_s, mu_s, _, target = slid_memory_and_style(4, c)
    c_s = g_s - torch.outer(mu_s, mu_s)
    low = torch.rand(c, 10, generator=g, dtype=torch.float64) @ torch.rand(10, 60, generator=g, dtype=torch.float64)
    full = low + 0.01 * torch.rand(c, 60, generator=g, dtype=torch.float64)
    for columns, tol in ((low, 1e-8), (full, 1e-3)):
        mem = FeatureMemory(c, 60, dtype=torch.float64, rank=24)
        mem.push(columns[:, :35])
        mem.push(columns[:, 35:])
        assert mem.factor.shape == (c, 24)
        f = torch.rand(c, 7, generator=g, dtype=torch.float64).requires_grad_(True)
        gram_dist, cov = style_distances(f, target, mem)
        (g_ours,) = torch.autograd.grad(gram_dist + cov, f)
        f2 = f.detach().clone().requires_grad_(True)
        x = torch.cat([columns, f2], dim=1)
        mu = x.mean(dim=1)
        naive_gram, naive_cov = ((gram(x) - g_s) ** 2).sum(), ((gram(x) - torch.outer(mu, mu) - c_s) ** 2).sum()
        (g_naive,) = torch.autograd.grad(naive_gram + naive_cov, f2)
        torch.testing.assert_close(gram_dist, naive_gram, rtol=tol, atol=0.0)
        torch.testing.assert_close(cov, naive_cov, rtol=tol, atol=0.0)
        assert float((g_ours - g_naive).norm() / g_naive.norm()) < tol


def test_mel_bank_is_librosas():
    for settings, bands in ((Settings(), 40), (Settings(sample_rate=48000, n_fft=1024, hop_length=256), 64)):
        theirs = librosa.filters.mel(sr=settings.sample_rate, n_fft=settings.n_fft, n_mels=bands, norm=None)
        ours = mel_bank(settings, bands)
        assert ours.shape == (bands, settings.n_bins)
        assert np.abs(ours - theirs).max() < 1e-6


def test_attack_loss_ignores_a_steady_eq_and_sees_a_swell():
    bank = torch.from_numpy(mel_bank(Settings(), 40)).double()
    g = torch.Generator().manual_seed(5)
    level = torch.full((12,), 0.1, dtype=torch.float64)
    level[6:] = 2.0  # a note starts at frame 6
    mag = torch.rand(1025, 1, generator=g, dtype=torch.float64) * level[None, :]
    target = attack_envelope(mag, bank, 1e-12)
    assert int(target.argmax()) == 5  # the rise into frame 6
    eq = torch.exp(torch.rand(1025, 1, generator=g, dtype=torch.float64) * 4 - 2)  # ±2 nats, steady
    assert float(attack_loss(mag * eq, target, bank, 1e-12, 1.0)) < 1e-12
    swell = mag.clone()
    swell[:300, 9] *= 4.0  # the lower bands swell for one frame, as a style's pumping does
    assert float(attack_loss(swell, target, bank, 1e-12, 1.0)) > 1e-3
