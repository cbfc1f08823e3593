import torch

from mst_live.losses import StyleTarget, content_loss, gram, style_loss


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
