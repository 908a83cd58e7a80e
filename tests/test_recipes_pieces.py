"""The composable pieces of the recipes: augmentations, samplers, losses, the inner maximiser, EMA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from scipy import stats

from shiftlab.data import load_dataset
from shiftlab.training.augment import AUGMENTATIONS, cutmix, flip_crop, mixup, ops, yoco
from shiftlab.training.averaging import WeightAverage
from shiftlab.training.losses import jensen_shannon, mixed_cross_entropy, trades_kl
from shiftlab.training.maximizers import InnerMax, maximize
from shiftlab.training.sampling import sample_beta, sample_dirichlet, sample_gamma


@pytest.fixture(scope="module")
def images():
    x, y = load_dataset("fashion-mnist", "test").get_batch(torch.arange(16))
    return x, y


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", AUGMENTATIONS.names() + ["yoco"])
def test_augmentation_contract(name, images):
    x, _ = images
    fn = (lambda x, g: yoco(x, g, flip_crop)) if name == "yoco" else AUGMENTATIONS.get(name)
    a, b, c = fn(x, gen(1)), fn(x, gen(1)), fn(x, gen(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    # batched with per-sample randomness: identical inputs get different outputs
    same = x[:1].expand(8, -1, -1, -1).contiguous()
    out = fn(same, gen(3))
    assert len({hash(o.numpy().tobytes()) for o in out}) > 1
    # works on 3-channel, non-square batches
    rgb = torch.rand(4, 3, 20, 24, generator=gen(4))
    assert fn(rgb, gen(5)).shape == rgb.shape


@pytest.mark.parametrize("a,b", [(0.2, 0.2), (1.0, 1.0), (2.0, 0.5)])
def test_beta_sampler_matches_scipy(a, b):
    """Two-sample KS against scipy's draws rounded to float32 (for small a, b about 2 % of the mass lies
    within float32 resolution of 1, so a one-sample test against the exact cdf would flag the rounding)."""
    draws = sample_beta((20000,), a, b, gen(0)).numpy()
    reference = stats.beta(a, b).rvs(20000, random_state=np.random.default_rng(0)).astype(np.float32)
    assert stats.ks_2samp(draws, reference).pvalue > 1e-3


def test_gamma_and_dirichlet():
    g = sample_gamma((20000,), 0.5, gen(0)).double().numpy()
    assert stats.kstest(g, stats.gamma(0.5).cdf).pvalue > 1e-3
    d = sample_dirichlet(1000, 3, 1.0, gen(0))
    assert torch.allclose(d.sum(1), torch.ones(1000)) and bool((d >= 0).all())


def test_mixup_definition(images):
    x, y = images
    m = mixup(x, y, 0.4, gen(7))
    lam = float(m.lam[0])
    assert torch.allclose(m.lam, torch.full_like(m.lam, lam))
    assert torch.allclose(m.x, lam * x + (1 - lam) * x[m.permutation], atol=1e-6)
    assert torch.equal(m.y_b, y[m.permutation]) and torch.equal(m.y_a, y)


def test_cutmix_definition():
    x = torch.rand(64, 1, 28, 28, generator=gen(0))
    y = torch.arange(64) % 10
    m = cutmix(x, y, 1.0, gen(8))
    from_partner = (m.x == x[m.permutation]) & (m.x != x)
    frac = from_partner.flatten(1).float().mean(1)
    moved = m.permutation != torch.arange(64)
    assert torch.allclose((1 - m.lam)[moved], frac[moved], atol=1e-6)
    for i in torch.nonzero(frac > 0).squeeze(1).tolist():  # the pasted region is a rectangle
        rows = from_partner[i, 0].any(1).nonzero()
        cols = from_partner[i, 0].any(0).nonzero()
        area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert int(area) == int(from_partner[i].sum())


def test_mixed_cross_entropy_is_soft_target_ce():
    logits = torch.randn(16, 10, generator=gen(0))
    ya, yb = torch.randint(0, 10, (16,), generator=gen(1)), torch.randint(0, 10, (16,), generator=gen(2))
    lam = torch.rand(16, generator=gen(3))
    target = lam[:, None] * F.one_hot(ya, 10) + (1 - lam[:, None]) * F.one_hot(yb, 10)
    direct = -(target * F.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(mixed_cross_entropy(logits, ya, yb, lam), direct, atol=1e-6)


def test_jensen_shannon_against_entropy_formula():
    logits = [torch.randn(8, 5, generator=gen(i)) * 3 for i in range(3)]
    probs = [F.softmax(z, 1).double().numpy() for z in logits]
    mixture = sum(probs) / 3
    direct = np.mean(stats.entropy(mixture, axis=1) - sum(stats.entropy(p, axis=1) for p in probs) / 3)
    assert float(jensen_shannon(*logits)) == pytest.approx(direct, rel=1e-4)
    assert float(jensen_shannon(logits[0], logits[0])) == pytest.approx(0.0, abs=1e-6)


def test_trades_kl_against_scipy():
    adv, clean = torch.randn(6, 4, generator=gen(0)), torch.randn(6, 4, generator=gen(1))
    p, q = F.softmax(clean, 1).double().numpy(), F.softmax(adv, 1).double().numpy()
    assert float(trades_kl(adv, clean)) == pytest.approx(stats.entropy(p, q, axis=1).mean(), rel=1e-4)


def _pil(img: torch.Tensor) -> Image.Image:
    return Image.fromarray((img[0] * 255).round().byte().numpy(), mode="L")


@pytest.mark.parametrize("op,pil_fn,level", [
    (ops.equalize, ImageOps.equalize, 0.0),
    (ops.autocontrast, ImageOps.autocontrast, 0.0),
    (ops.posterize, lambda im: ImageOps.posterize(im, 3), 0.25),
    (ops.solarize, lambda im: ImageOps.solarize(im, 256 - 64), 0.25),
])
def test_pixel_ops_match_pil(op, pil_fn, level, images):
    x, _ = images
    x = (x * 255).round() / 255
    out = op(x, torch.full((len(x),), level), gen(0))
    ref = torch.stack([torch.from_numpy(np.array(pil_fn(_pil(img)))).float() / 255 for img in x]).unsqueeze(1)
    assert (out - ref).abs().max() <= 1.5 / 255


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.BatchNorm1d(32),
                                       torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("cfg", [InnerMax(eps=0.1, steps=5), InnerMax(eps=0.05, steps=1, alpha=0.0625),
                                 InnerMax(eps=0.1, steps=5, loss="kl", start="gaussian"),
                                 InnerMax(eps=0.1, steps=5, early_stop=0), InnerMax(eps=0.1, steps=3, bn="batch")])
def test_maximizer_contract(cfg, fmnist_model, images):
    model, _ = fmnist_model
    x, y = images
    model.train()
    bn_before = {k: v.clone() for k, v in model.state_dict().items()}
    out = maximize(model, x, y, cfg, gen(0))
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in bn_before.items())
    assert float((out.x_adv - x).abs().max()) <= cfg.eps + 1e-6
    assert float(out.x_adv.min()) >= 0 and float(out.x_adv.max()) <= 1
    model.eval()
    if cfg.loss == "ce" and cfg.early_stop is None and cfg.bn == "eval" and cfg.steps > 1:
        with torch.no_grad():
            assert (model(out.x_adv).argmax(1) == y).float().mean() < (model(x).argmax(1) == y).float().mean() - 0.3


def test_friendly_pgd_stops_at_first_misclassification(fmnist_model, images):
    """τ = 0 and no random start: already-misclassified points are left untouched."""
    model, _ = fmnist_model
    x, y = images
    y = torch.where(torch.arange(len(y)) % 2 == 0, (y + 1) % 10, y)  # force some misclassified points
    with torch.no_grad():
        wrong = model(x).argmax(1) != y
    out = maximize(model, x, y, InnerMax(eps=0.1, steps=5, start="none", early_stop=0), gen(0))
    assert bool(wrong.any())
    assert torch.equal(out.x_adv[wrong], x[wrong])
    assert bool((out.x_adv[~wrong] != x[~wrong]).any())


def test_ema_update_formula():
    model = _Tiny()
    ema = WeightAverage(model, 0.99)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    d = min(0.99, 1 / 10)
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(ema.state[k], d * start[k] + (1 - d) * v), k
    with pytest.raises(ValueError):
        WeightAverage(model, 1.0)
